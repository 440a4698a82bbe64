// The explorer's one script, all of it optional: the pages work without it.
// - A form leaves its empty fields out of the URL (an empty filter is no filter).
// - The API's URL is selected by a click, to copy.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  for (const field of form.querySelectorAll("input, select")) {
    if (field.name && field.value === "") field.disabled = true;
  }
});
document.addEventListener("pageshow", () => {
  // Back in history: the fields disabled on submit are usable again.
  for (const field of document.querySelectorAll("input:disabled, select:disabled")) field.disabled = false;
});
const url = document.getElementById("api-url");
if (url) {
  url.addEventListener("click", () => {
    const range = document.createRange();
    range.selectNodeContents(url);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  });
}
