// spywall console: the live page's server-sent events (no polling), and nothing else.
// Data is written with textContent only, never as markup.
"use strict";

(function () {
  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
  }

  function bump(tbodyId, key, first) {
    const body = document.getElementById(tbodyId);
    if (!body) return;
    let row = Array.from(body.rows).find(function (r) { return r.dataset.key === key; });
    if (!row) {
      row = document.createElement("tr");
      row.dataset.key = key;
      cell(row, key);
      cell(row, 0);
      if (first) body.insertBefore(row, body.firstChild); else body.appendChild(row);
    }
    const count = row.cells[1];
    count.textContent = String(Number(count.textContent) + 1);
  }

  function prepend(body, row, limit) {
    row.className += " fresh";
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > limit) body.deleteRow(body.rows.length - 1);
  }

  function start() {
    const live = document.getElementById("live");
    if (!live || live.dataset.started) return;
    live.dataset.started = "1";
    const status = document.getElementById("live-status");
    const decisions = document.getElementById("decisions");
    const violations = document.getElementById("violations");
    const seen = new Set(Array.from(violations.rows).map(function (r) { return r.dataset.event; }));
    let seq = live.dataset.seq;
    let recorded = live.dataset.recorded;
    let source = null;

    function open() {
      const url = "/ui/live/stream?seq=" + encodeURIComponent(seq) +
                  "&recorded=" + encodeURIComponent(recorded);
      source = new EventSource(url);
      source.addEventListener("open", function () { status.textContent = "Connected: live."; });
      source.addEventListener("error", function () {
        status.textContent = "Connection lost; reconnecting…";
      });
      source.addEventListener("decision", function (msg) {
        const d = JSON.parse(msg.data);
        seq = d.seq;
        const row = document.createElement("tr");
        row.className = "verdict-" + d.verdict;
        [d.seq, d.received, d.id, d.type, d.account, d.verdict, d.reasons.join("; ")]
          .forEach(function (v) { cell(row, v); });
        prepend(decisions, row, 200);
        bump("per-minute", d.minute, true);
        d.rules.forEach(function (r) { bump("reasons", r, false); });
      });
      source.addEventListener("violation", function (msg) {
        const v = JSON.parse(msg.data);
        recorded = v.recorded;
        if (seen.has(v.event)) return;
        seen.add(v.event);
        const row = document.createElement("tr");
        row.dataset.event = v.event;
        [v.event, v.party, v.type, v.ts, v.verdict, v.rule, v.identifiers.join("; ")]
          .forEach(function (x) { cell(row, x); });
        prepend(violations, row, 200);
      });
    }
    open();
    window.addEventListener("pagehide", function () { if (source) source.close(); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
