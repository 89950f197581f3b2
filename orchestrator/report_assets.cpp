// The report's stylesheet and script, inlined into every page (no network, no external files).
//
// The script: counts uncaught errors into <body data-errors> (a headless browser test reads it from the DOM);
// sorts a table.sortable on a header click (numbers by value, so "0.912 ± 0.010" sorts as 0.912, text
// otherwise, empty and NaN cells last in both directions); and, when the page is opened with #selftest
// (optionally #selftest=TABLE_ID:COLUMN), records how many of each figure's marks render with a box
// (data-rendered-marks) and clicks that table's column header, so a DOM dump shows the result of both.
#include "orchestrator/report.h"

namespace sdm::orchestrator {

const char* report_css() {
  return R"css(
body { font-family: "DejaVu Sans", system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em;
       color: #222; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #0072B2; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
.muted { color: #666; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.88em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; white-space: nowrap; }
table.sortable th { cursor: pointer; background: #f3f6fa; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
td.error { white-space: normal; max-width: 60em; font-family: monospace; }
.table-wrap { overflow-x: auto; }
.counts span { display: inline-block; margin-right: 1.2em; padding: 0.2em 0.7em; border-radius: 0.3em; background: #eef; }
.counts .failed { background: #fde2e2; }
.counts .done { background: #e2f5e9; }
figure.plot { margin: 1em 0 2em; }
figure.plot svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
)css";
}

const char* report_js() {
  return R"js(
(function () {
  'use strict';
  var errors = 0;
  function noteError() {
    errors += 1;
    if (document.body) document.body.setAttribute('data-errors', String(errors));
  }
  window.addEventListener('error', noteError);
  window.addEventListener('unhandledrejection', noteError);

  // the leading number of a cell ("0.912 ± 0.010" -> 0.912), or null for text, empty and NaN
  function numberOf(text) {
    var m = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)/.exec(text);
    return m ? parseFloat(m[1]) : null;
  }

  function sortTable(table, column) {
    var header = table.tHead.rows[0].cells;
    var ascending = header[column].getAttribute('aria-sort') !== 'ascending';
    for (var i = 0; i < header.length; i++) header[i].removeAttribute('aria-sort');
    header[column].setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, index) {
      var text = row.cells[column] ? row.cells[column].textContent.trim() : '';
      return { row: row, index: index, text: text, number: numberOf(text) };
    });
    var numeric = keyed.some(function (k) { return k.number !== null; });
    keyed.sort(function (a, b) {
      var missingA = numeric ? a.number === null : a.text === '';
      var missingB = numeric ? b.number === null : b.text === '';
      if (missingA !== missingB) return missingA ? 1 : -1;  // empty / NaN last either way
      var order = 0;
      if (!missingA) order = numeric ? a.number - b.number : a.text.localeCompare(b.text);
      if (!ascending) order = -order;
      return order !== 0 ? order : a.index - b.index;  // stable
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }
  window.sdmSortTable = sortTable;

  function selfTest(spec) {
    var figures = document.querySelectorAll('figure.plot');
    for (var f = 0; f < figures.length; f++) {
      var marks = figures[f].querySelectorAll('.mark');
      var rendered = 0;
      for (var m = 0; m < marks.length; m++) {
        var box = marks[m].getBBox();
        if (box.width > 0 || box.height > 0) rendered += 1;
      }
      figures[f].setAttribute('data-rendered-marks', String(rendered));
    }
    if (spec) {
      var parts = spec.split(':');
      var table = document.getElementById(parts[0]);
      if (!table) throw new Error('selftest: no table ' + parts[0]);
      var header = table.tHead.rows[0].cells;
      for (var i = 0; i < header.length; i++) {
        if (header[i].textContent.trim() === parts[1]) {
          header[i].click();  // through the real handler
          table.setAttribute('data-sorted-by', parts[1]);
        }
      }
    }
    document.body.setAttribute('data-selftest', 'done');
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.body.setAttribute('data-errors', String(errors));
    var tables = document.querySelectorAll('table.sortable');
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
        th.addEventListener('click', function () { sortTable(table, column); });
      });
    });
    var hash = decodeURIComponent(window.location.hash || '');
    if (hash.indexOf('#selftest') === 0) selfTest(hash.slice('#selftest='.length));
  });
})();
)js";
}

}  // namespace sdm::orchestrator
