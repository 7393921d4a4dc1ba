// Progressive enhancement: a Copy button next to a value shown once (the value is selectable
// without JavaScript too).
for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      if (status) status.textContent = "Copied.";
    } catch {
      if (status) status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected secret.";
    }
  });
}
