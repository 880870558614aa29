// The viewer's few behaviours: copy buttons, "show all" for long content, the filter bar,
// collapsible waterfall rows and live updates of the trace list. No inline scripts anywhere:
// everything is wired here from data- attributes.
"use strict";
document.documentElement.classList.add("js");

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  // Plain-http pages on another host are not a secure context: fall back to a hidden textarea.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

function wireCopy(root) {
  root.querySelectorAll("button.copy").forEach((button) => {
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      const label = button.textContent;
      // Big texts (the raw record) are copied from the element showing them, not kept twice.
      const source = button.dataset.copyFrom ? document.getElementById(button.dataset.copyFrom) : null;
      copyText(source ? source.textContent : button.dataset.copy || "").then(
        () => { button.textContent = "copied ✓"; },
        () => { button.textContent = "copy failed"; }
      ).finally(() => setTimeout(() => { button.textContent = label; }, 1200));
    });
  });
}

// Long content is shown clipped with a "show all" button; nothing is ever cut from the page.
function wireLong(root) {
  root.querySelectorAll(".long").forEach((box) => {
    if (box.dataset.wired) return;
    if (box.scrollHeight === 0) return; // inside a closed <details>: measured when opened
    box.dataset.wired = "1";
    if (box.scrollHeight <= box.clientHeight + 4) {
      box.classList.add("fits");
      return;
    }
    const lines = (box.textContent.match(/\n/g) || []).length + 1;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "show-all";
    const closed = "show all (" + lines.toLocaleString() + " lines, " + box.textContent.length.toLocaleString() + " characters)";
    button.textContent = closed;
    button.addEventListener("click", () => {
      const open = box.classList.toggle("open");
      button.textContent = open ? "show less" : closed;
    });
    box.after(button);
  });
}

function wireFilters() {
  const form = document.getElementById("filters");
  if (!form) return;
  const range = form.querySelector("select.range");
  const custom = form.querySelector(".custom-range");
  const syncRange = () => { if (custom) custom.hidden = range.value !== "custom"; };
  if (range) {
    range.addEventListener("change", () => {
      syncRange();
      if (range.value !== "custom") form.requestSubmit();
    });
  }
  form.querySelectorAll("select:not(.range)").forEach((select) => {
    select.addEventListener("change", () => form.requestSubmit());
  });
  // Keep the URL short and shareable: leave out empty fields and the custom dates when unused.
  form.addEventListener("submit", () => {
    form.querySelectorAll("input, select").forEach((field) => {
      const unused = range && range.value !== "custom" && (field.name === "since" || field.name === "until");
      if (!field.value || unused || (field.name === "range" && field.value === "7d")) field.disabled = true;
    });
  });
  // Coming back with the back button may restore a page whose fields were disabled on submit.
  window.addEventListener("pageshow", () => {
    form.querySelectorAll("[disabled]").forEach((field) => { field.disabled = false; });
    syncRange();
  });
}

// A row of a waterfall (a trace's, or a step's children) opens its record when clicked.
function wireRowLinks() {
  document.querySelectorAll("tr.wf-row[data-href]").forEach((row) => {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button") || window.getSelection().toString()) return;
      window.location.href = row.dataset.href;
    });
  });
}

function wireWaterfall() {
  const table = document.getElementById("waterfall");
  if (!table) return;
  const rows = Array.from(table.querySelectorAll("tr.wf-row"));
  const descendants = (row) => {
    const depth = Number(row.dataset.depth);
    const found = [];
    for (let i = rows.indexOf(row) + 1; i < rows.length && Number(rows[i].dataset.depth) > depth; i++) {
      found.push(rows[i]);
    }
    return found;
  };
  rows.forEach((row) => {
    const toggle = row.querySelector("button.toggle");
    if (toggle) {
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "▾" : "▸";
        const hidden = descendants(row);
        hidden.forEach((kid) => {
          kid.hidden = !open;
          const inner = kid.querySelector("button.toggle");
          if (open && inner) { inner.setAttribute("aria-expanded", "true"); inner.textContent = "▾"; }
          const note = kid.querySelector(".hidden-count");
          if (open && note) note.hidden = true;
        });
        const note = row.querySelector(".hidden-count");
        if (note) {
          note.textContent = hidden.length + " hidden";
          note.hidden = open;
        }
      });
    }
  });
}

function wireLive() {
  const table = document.querySelector("table.traces[data-live]");
  const box = document.getElementById("live");
  if (!table || !box) return;
  const state = document.getElementById("live-state");
  const body = document.getElementById("trace-rows");
  const storageKey = "neatlogs-live";
  let timer = null;
  // Storage can be refused (privacy settings); the switch then simply starts on.
  const remembered = () => { try { return localStorage.getItem(storageKey); } catch (e) { return null; } };
  const remember = (value) => { try { localStorage.setItem(storageKey, value); } catch (e) { /* not kept */ } };
  box.checked = remembered() !== "off";
  const idsOf = (root) => new Set(Array.from(root.querySelectorAll("tr[data-trace]")).map((tr) => tr.dataset.trace));
  const say = (text) => { if (state) state.textContent = text; };

  async function poll() {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(table.dataset.rows, { credentials: "same-origin", headers: { Accept: "text/html" } });
    } catch (error) {
      say("collector unreachable, retrying…");
      return;
    }
    if (response.status === 401) {
      say("logged out: reload to log in");
      stop();
      return;
    }
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = await response.text();
    const before = idsOf(body);
    const fresh = template.content;
    fresh.querySelectorAll("tr[data-trace]").forEach((tr) => {
      if (!before.has(tr.dataset.trace)) tr.classList.add("new");
    });
    body.replaceChildren(fresh);
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = body.children.length > 0;
    say("updated " + new Date().toLocaleTimeString());
  }
  function start() { if (!timer) { timer = setInterval(poll, 2000); say("watching for new traces"); } }
  function stop() { if (timer) { clearInterval(timer); timer = null; } }
  box.addEventListener("change", () => {
    remember(box.checked ? "on" : "off");
    if (box.checked) { start(); poll(); } else { stop(); say("paused"); }
  });
  if (box.checked) start(); else say("paused");
}

document.addEventListener("DOMContentLoaded", () => {
  wireCopy(document);
  wireLong(document);
  document.querySelectorAll("details").forEach((details) => {
    details.addEventListener("toggle", () => wireLong(details));
  });
  wireFilters();
  wireWaterfall();
  wireRowLinks();
  wireLive();
});
