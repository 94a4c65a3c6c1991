// The events list, live: the server says when something arrived or moved (server-sent events),
// and the first page's rows are fetched again, rendered and escaped by the server.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (source && navigator.clipboard) {
        await navigator.clipboard.writeText(source.innerText);
        button.textContent = "Copied";
      }
    });
  }
  // Text a page keeps current (a replay's progress): fetched again whenever something moved.
  const fragments = document.querySelectorAll("[data-live-fragment]");
  if (fragments.length > 0 && window.EventSource) {
    const changes = new EventSource("/live");
    changes.addEventListener("changed", async () => {
      for (const fragment of fragments) {
        const response = await fetch(fragment.dataset.liveFragment, { credentials: "same-origin" });
        if (response.ok) {
          fragment.textContent = await response.text();
        }
      }
    });
  }
  const live = document.getElementById("live");
  const rows = document.getElementById("rows");
  if (!live || !rows || !window.EventSource) {
    return;
  }
  const firstPage = live.dataset.firstPage === "true";
  const filters = new URLSearchParams(window.location.search);
  filters.delete("after");
  const source = new EventSource("/live");
  let fetching = false;
  let again = false;
  const refresh = async () => {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch("/rows?" + filters.toString(), { credentials: "same-origin" });
      if (response.ok) {
        rows.innerHTML = await response.text();
        live.classList.add("updated");
      }
    } finally {
      fetching = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  };
  source.addEventListener("changed", () => {
    if (firstPage) {
      refresh();
    } else {
      live.textContent = "New events arrived. ";
      const link = document.createElement("a");
      link.href = "/?" + filters.toString();
      link.textContent = "Show the newest";
      live.appendChild(link);
    }
  });
  source.onerror = () => live.classList.add("offline");
  source.onopen = () => live.classList.remove("offline");
});
