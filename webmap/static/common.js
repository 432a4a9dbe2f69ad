/*
 * common.js: small DOM and URL helpers shared by the map (webmap.js), priority (priority.js) and exposure
 * (exposure.js) pages (SPDX-License-Identifier: GPL-3.0-or-later).
 *
 * Loaded as a file before the page's own script (the CSP forbids inline scripts); it only defines
 * ``window.WebmapCommon`` and touches nothing on the page. Text from data is only ever set with
 * textContent, never parsed as HTML, so every page that builds its DOM with these helpers keeps that rule.
 *
 * Plain ES2017, no build step.
 */
(function (window, document) {
  'use strict';

  // An element with an optional class and text (textContent: never HTML).
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Call ``fn`` once ``ms`` after the last call, with that call's arguments; ``cancel()`` drops a waiting
  // call and ``pending()`` tells whether one waits (the map page's tests read it).
  function debounce(fn, ms) {
    let timer = null;
    const wrapped = function () {
      const args = arguments;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => { timer = null; fn.apply(null, args); }, ms);
    };
    wrapped.cancel = () => { if (timer) clearTimeout(timer); timer = null; };
    wrapped.pending = () => timer !== null;
    return wrapped;
  }

  // "{name}" placeholders of a translated string filled from ``values``; an unknown one stays as it is.
  function format(template, values) {
    return String(template).replace(/\{(\w+)\}/g, (m, key) => (key in values ? values[key] : m));
  }

  // Query strings keep commas readable (bbox=W,S,E,N, type=a,b); everything else is encoded, and empty
  // values are left out.
  function query(params) {
    return Object.keys(params)
      .filter((key) => params[key] !== undefined && params[key] !== null && params[key] !== '')
      .map((key) => encodeURIComponent(key) + '=' + encodeURIComponent(params[key]).replace(/%2C/gi, ','))
      .join('&');
  }

  // A two-column table of [label, value] rows (th, td), as the popups show a feature's figures.
  function labelTable(rows) {
    const table = el('table');
    rows.forEach(([label, value]) => {
      const tr = el('tr');
      tr.appendChild(el('th', null, label));
      tr.appendChild(el('td', null, value));
      table.appendChild(tr);
    });
    return table;
  }

  window.WebmapCommon = Object.freeze({ el, debounce, format, query, labelTable });
})(window, document);
