// leadflow web app: the little JavaScript the pages use. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The phone menu.
  const toggle = document.querySelector(".menu-toggle");
  const nav = document.getElementById("nav");
  if (toggle && nav) {
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }
  // Destructive actions ask first.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
  // Long operations: a page with [data-progress-url] polls it and shows the progress.
  document.querySelectorAll("[data-progress-url]").forEach((box) => {
    const bar = box.querySelector("progress");
    const label = box.querySelector(".progress-label");
    const poll = async () => {
      const response = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) { return; }
      const state = await response.json();
      if (bar && state.total) { bar.max = state.total; bar.value = state.done; }
      if (label) { label.textContent = state.label || ""; }
      if (state.finished) {
        if (state.redirect) { window.location.assign(state.redirect); }
        return;
      }
      window.setTimeout(poll, 700);
    };
    poll();
  });
});
