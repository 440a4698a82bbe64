#!/usr/bin/env python3
"""Writes a Sirene-shaped CSV: the establishments file of INSEE's Sirene register, in its shape
but with made-up values (the real file is 6 GB and not available offline).

usage: gen_sirene.py OUT.csv [ROWS]   (default 30,000,000 rows, about 4.5 GB; ~10 min)

Fifteen columns, as the published `StockEtablissement` (and its geolocated edition) has them:
14-digit `siret` (the 9-digit
`siren` and 5-digit `nic`), ordered by `siren` as INSEE publishes it; commune and postal codes
that keep their leading zeros (`01053`, `2A004`, about 35,000 communes, big ones more frequent);
creation dates from 1950 on (half of them after 2010); an activity code (`62.01Z`, ~700 values);
a staff-size band (`NN`, `00`, `01`…); an administrative state (`A`/`F`); the last processing
datetime; a sign name (`enseigne1Etablissement`, empty for two thirds, as published); and the
`latitude`/`longitude` of the establishment, around its commune's centre. Deterministic: the same ROWS give the same bytes.
"""
import random
import sys


def communes(rng):
    deps = [f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"]
    deps += ["971", "972", "973", "974", "976"]
    out = []
    for d in deps:
        for n in rng.sample(range(1, 1000 if len(d) == 2 else 100), 360 if len(d) == 2 else 30):
            code = d + (f"{n:03d}" if len(d) == 2 else f"{n:02d}")
            post = (d if d[0].isdigit() else "20") + f"{rng.randrange(0, 1000):03d}"
            post = post[:5]
            # Metropolitan France's box for the mainland codes, rough boxes overseas.
            lat, lon = {"971": (16.2, -61.5), "972": (14.6, -61.0), "973": (4.9, -52.3),
                        "974": (-21.1, 55.5), "976": (-12.8, 45.2)}.get(
                d, (rng.uniform(42.5, 50.9), rng.uniform(-4.5, 7.8)))
            out.append((code, post, f"COMMUNE {code}", lat, lon))
    return out


TRADES = ["BOULANGERIE", "PHARMACIE", "GARAGE", "CAFE", "RESTAURANT", "COIFFURE", "BOUCHERIE",
          "TABAC", "HOTEL", "PLOMBERIE", "CABINET", "EPICERIE", "LIBRAIRIE", "FLEURS", "AUTO-ECOLE"]
NAMES = ["MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY",
         "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX",
         "VINCENT", "FOURNIER", "MOREL", "GIRARD", "ANDRE", "MERCIER", "DUPONT", "LAMBERT", "BONNET",
         "FRANCOIS", "MARTINEZ", "LEGRAND", "DU CENTRE", "DE LA GARE", "DU PORT", "DES HALLES"]


def main():
    out = sys.argv[1]
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 30_000_000
    rng = random.Random(2026)
    towns = communes(rng)
    # Big towns hold more establishments: a Zipf-like weight by rank.
    weights = [1.0 / (i + 10) for i in range(len(towns))]
    naf = sorted({f"{rng.randrange(1, 100):02d}.{rng.randrange(0, 100):02d}{rng.choice('ABCZ')}"
                  for _ in range(900)})[:700]
    bands = ["NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53"]
    band_w = [30, 25, 12, 8, 6, 5, 4, 3, 2, 1.5, 1, 0.8, 0.5, 0.3, 0.2, 0.1]
    years = list(range(1950, 2026))
    year_w = [0.2 if y < 1980 else 0.6 if y < 2000 else 1.2 if y < 2010 else 3.0 for y in years]
    chunk = 100_000
    siren = 5_000_000
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write("siren,nic,siret,statutDiffusionEtablissement,dateCreationEtablissement,"
                "trancheEffectifsEtablissement,activitePrincipaleEtablissement,codePostalEtablissement,"
                "codeCommuneEtablissement,libelleCommuneEtablissement,etatAdministratifEtablissement,"
                "dateDernierTraitementEtablissement,enseigne1Etablissement,latitude,longitude\n")
        done = 0
        while done < rows:
            n = min(chunk, rows - done)
            town = rng.choices(towns, weights, k=n)
            act = rng.choices(naf, k=n)
            band = rng.choices(bands, band_w, k=n)
            year = rng.choices(years, year_w, k=n)
            lines = []
            nic = 0
            for i in range(n):
                # One to a few establishments per company, numbered by `nic`.
                if nic == 0 or rng.random() < 0.6:
                    siren += rng.randrange(1, 60)
                    nic = 10 + rng.randrange(0, 20)
                else:
                    nic += rng.randrange(1, 40)
                s = f"{siren:09d}"
                ni = f"{nic:05d}"
                code, post, name, lat, lon = town[i]
                created = f"{year[i]}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
                closed = "F" if rng.random() < 0.35 else "A"
                diffusion = "P" if rng.random() < 0.03 else "O"
                touched = (f"20{rng.randrange(17, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
                           f"T{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:{rng.randrange(0, 60):02d}")
                sign = (f"{rng.choice(TRADES)} {rng.choice(NAMES)}" if rng.random() < 0.33 else "")
                lines.append(f"{s},{ni},{s}{ni},{diffusion},{created},{band[i]},{act[i]},{post},{code},"
                             f"{name},{closed},{touched},{sign},"
                             f"{lat + rng.uniform(-0.03, 0.03):.6f},{lon + rng.uniform(-0.03, 0.03):.6f}\n")
            f.write("".join(lines))
            done += n


if __name__ == "__main__":
    main()
