//! One test over a real socket: the server as clients meet it.

use crate::support::{build_state, repo_path};

#[tokio::test]
async fn serves_over_tcp_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let state = build_state(dir.path(), &repo_path("datasets"), "");
    state.catalog.ingest_and_load(&[], false).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(qanat::app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let url =
        format!("http://{addr}/api/datasets/villes-maroc/data?nom__contains=beni&nom__sort=asc");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["nom"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Aïn Beni Mathar",
            "Beni Enzar",
            "Beni Mellal",
            "Beni Yakhlef"
        ]
    );
    assert_eq!(v["links"]["self"], format!("{url}&page_size=20&page=1"));
    let csv = client
        .get(format!(
            "http://{addr}/api/datasets/villes-maroc/data.csv?columns=nom,nom_ar&nom__in=Rabat,Fes"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv, "nom,nom_ar\nRabat,الرباط\nFes,فاس\n");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
