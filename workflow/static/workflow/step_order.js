// A new inline step row takes the order after the highest one on the page,
// instead of the model's default of 1 on every row.
"use strict";
document.addEventListener("formset:added", (event) => {
  if (event.detail.formsetName !== "steps") {
    return;
  }
  const row = event.target;
  const input = row.querySelector('input[name$="-order"]');
  if (!input) {
    return;
  }
  let highest = 0;
  document.querySelectorAll('input[name^="steps-"][name$="-order"]').forEach((other) => {
    if (other === input || other.name.includes("__prefix__")) {
      return;
    }
    const value = parseInt(other.value, 10);
    if (!Number.isNaN(value) && value > highest) {
      highest = value;
    }
  });
  input.value = String(highest + 1);
});
