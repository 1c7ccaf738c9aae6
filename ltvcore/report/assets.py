"""The page's stylesheet and script, inlined into every report (no files to ship beside it)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
:root { --ink: #1f2933; --muted: #52606d; --line: #d9e2ec; --bg: #f5f7fa; --good: #1a9850;
        --good-bg: #e3f4e8; --warn: #8a5a00; --warn-bg: #fff4d6; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header .sub { color: var(--muted); margin: 0 0 16px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 18px 20px; margin: 16px 0; }
section h2 { font-size: 18px; margin: 0 0 6px; }
.note { color: var(--muted); margin: 4px 0 10px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
         margin: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 19px; font-weight: 600; overflow-wrap: anywhere; }
.card .s { color: var(--muted); font-size: 12px; }
.card.good .v { color: var(--good); }
.request-line { margin: 10px 0 0; color: var(--ink); }
.request-line strong { margin-right: 6px; }
.request-line .rk { color: var(--muted); }
.req { white-space: nowrap; }
dl.request { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px;
             margin: 8px 0 0; }
dl.request dt { color: var(--muted); }
dl.request dd { margin: 0; overflow-wrap: anywhere; }
.rule { background: var(--good-bg); border-left: 4px solid var(--good); padding: 8px 12px;
        margin: 8px 0 12px; border-radius: 4px; }
.warnings { background: var(--warn-bg); border-color: #f0c36d; }
.warnings h2 { color: var(--warn); }
.warnings ul, .assumptions ul { margin: 6px 0 0; padding-left: 22px; }
.ok { color: var(--good); }
.chart { width: 100%; min-height: 200px; }
.chart-error { display: none; color: #b42318; font-weight: 600; }
body[data-charts="failed"] .chart-error { display: block; }
.table-tools { display: flex; gap: 12px; align-items: center; margin: 6px 0 10px;
               flex-wrap: wrap; }
.table-wrap { overflow: auto; max-height: 640px; border: 1px solid var(--line);
              border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 13px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid #edf1f5; text-align: left;
         white-space: nowrap; }
td.num, th.num { text-align: right; }
thead th { position: sticky; top: 0; background: #f0f4f8; z-index: 1; font-weight: 600; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th:hover { background: #e4ebf2; }
table.sortable thead th::after { content: " \\2195"; color: #9aa5b1; font-weight: 400; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--ink); }
table.sortable thead th[aria-sort="descending"]::after { content: " \\2193"; color: var(--ink); }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.scale, tr.scale:nth-child(even) { background: var(--good-bg); }
tr.scale td:first-child { box-shadow: inset 4px 0 0 var(--good); }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
         background: var(--good); color: #fff; font-weight: 600; }
.badge.watch { background: var(--warn); }
.badge.cut { background: #c0392b; }
table.params td.p { white-space: normal; }
#forecast-table thead th { white-space: normal; vertical-align: bottom; }
td.wrap { white-space: normal; overflow-wrap: anywhere; min-width: 6em; max-width: 16em; }
input[type=search] { font: inherit; padding: 3px 8px; min-width: 16em; border: 1px solid #bcccdc;
                     border-radius: 4px; }
#downloads a { color: var(--accent); }
details > summary { cursor: pointer; color: var(--accent); margin: 4px 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; }
@media print { body { background: #fff; } section { break-inside: avoid; }
               .table-wrap { max-height: none; overflow: visible; } }
"""

# Plain inline JavaScript: draw the charts, make tables sortable, filter the forecast by horizon
# and by search words.
# Reads its data from the JSON block, never from the network.
SCRIPT = """
(function () {
  "use strict";
  var body = document.body;
  function fail(err) {
    body.setAttribute("data-charts", "failed");
    var msg = document.querySelectorAll(".chart-error");
    for (var i = 0; i < msg.length; i++) {
      msg[i].textContent = "The chart could not be drawn: "
                           + (err && err.message ? err.message : err);
    }
    if (window.console) { console.error(err); }
  }
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var config = { displaylogo: false, responsive: true, showLink: false,
                 modeBarButtonsToRemove: ["select2d", "lasso2d"],
                 toImageButtonOptions: { filename: "ltv-forecast" } };
  try {
    var jobs = [];
    var charts = [["curves", "ltv-chart"], ["roas", "roas-chart"],
                  ["retention", "retention-chart"]];
    charts.forEach(function (pair) {
      var figure = data[pair[0]];
      if (figure) { jobs.push(Plotly.newPlot(pair[1], figure.data, figure.layout, config)); }
    });
    Promise.all(jobs).then(function () {
      var roas = document.getElementById("roas-chart");
      if (roas && data.roas) {
        hideOverlaps(roas);
        roas.on("plotly_afterplot", function () { hideOverlaps(roas); });
      }
      body.setAttribute("data-charts", "rendered");
    }, fail);
  } catch (err) {
    fail(err);
  }

  // The names were placed not to overlap at the report's usual width; on a narrower screen a
  // name that now overlaps an earlier (more important) one is hidden, and hover still names it.
  function hideOverlaps(chart) {
    var kept = [];
    Array.prototype.forEach.call(chart.querySelectorAll("g.annotation"), function (name) {
      var text = name.querySelector(".annotation-text");
      if (!text) { return; }
      name.style.display = "";
      var box = text.getBoundingClientRect();
      if (box.width === 0) { return; }
      var clash = kept.some(function (other) {
        return box.left < other.right && other.left < box.right
               && box.top < other.bottom && other.top < box.bottom;
      });
      if (clash) { name.style.display = "none"; } else { kept.push(box); }
    });
  }

  function cellKey(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
    if (!numeric) { return raw.trim(); }
    var value = parseFloat(raw);
    return isNaN(value) ? null : value;
  }
  function sortTable(table, th) {
    var index = th.cellIndex;
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    // Numbers start high-to-low (the best campaigns first), text starts A-to-Z.
    var dir = current === "descending" ? "ascending"
            : current === "ascending" ? "descending"
            : numeric ? "descending" : "ascending";
    var sign = dir === "ascending" ? 1 : -1;
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var keyed = rows.map(function (row, pos) {
      return { row: row, key: cellKey(row, index, numeric), pos: pos };
    });
    keyed.sort(function (a, b) {
      var missingA = a.key === null || a.key === "", missingB = b.key === null || b.key === "";
      if (missingA || missingB) {
        return missingA === missingB ? a.pos - b.pos : (missingA ? 1 : -1);
      }
      var c = numeric ? a.key - b.key
                      : a.key.localeCompare(b.key, undefined,
                                            { numeric: true, sensitivity: "base" });
      return c !== 0 ? sign * c : a.pos - b.pos;
    });
    keyed.forEach(function (item) { tbody.appendChild(item.row); });
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].setAttribute("aria-sort", "none"); }
    th.setAttribute("aria-sort", dir);
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () { sortTable(table, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, th); }
      });
    });
  });

  // The horizon choice and the search words both apply: a row shows when it passes both.
  var filter = document.getElementById("horizon-filter");
  var search = document.getElementById("table-search");
  var count = document.getElementById("table-count");
  function filterRows() {
    var wanted = filter ? filter.value : "all";
    var words = search ? search.value.toLowerCase().split(/\\s+/).filter(Boolean) : [];
    var rows = document.querySelectorAll("#forecast-table tbody tr");
    var shown = 0;
    Array.prototype.forEach.call(rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = (wanted !== "all" && row.getAttribute("data-horizon") !== wanted)
                   || !words.every(function (w) { return text.indexOf(w) !== -1; });
      if (!row.hidden) { shown += 1; }
    });
    if (count) {
      count.textContent = shown === rows.length ? "" : shown + " of " + rows.length + " rows";
    }
  }
  if (filter) { filter.addEventListener("change", filterRows); }
  if (search) { search.addEventListener("input", filterRows); }
})();
"""
