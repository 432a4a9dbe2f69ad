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

  // "Print patrol map" (issue 4): a Leaflet control whose button toggles a draw mode (crosshair, map
  // dragging off; press, drag and release draws a rectangle; Esc cancels), then a small panel with paper,
  // orientation and an "In PDF" link to ``options.url?bbox=W,S,E,N&paper=&orientation=`` plus
  // ``options.params()`` (the priority page's analysis). ``S`` holds the ``priority_rect_*`` strings.
  // Returns the control; ``control.rectangle`` is the drawn L.rectangle (or null).
  function printRectangleControl(map, S, options) {
    const L = window.L;
    const control = L.control({ position: 'topleft' });
    control.rectangle = null;
    let drawing = false;
    let start = null;
    let box, button, panel, link, paper, orientation;

    function setDrawing(on) {
      drawing = on;
      start = null;
      box.classList.toggle('wm-print-rect-drawing', on);
      button.setAttribute('aria-pressed', on ? 'true' : 'false');
      map.getContainer().style.cursor = on ? 'crosshair' : '';
      if (on) map.dragging.disable(); else map.dragging.enable();
      if (on) map.boxZoom.disable(); else map.boxZoom.enable();
    }

    function updateLink() {
      if (!control.rectangle) return;
      const b = control.rectangle.getBounds();
      const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(',');
      const params = Object.assign({ bbox: bbox, paper: paper.value, orientation: orientation.value },
        options.params ? options.params() : {});
      link.href = options.url + '?' + query(params);
    }

    function clearRectangle() {
      if (control.rectangle) map.removeLayer(control.rectangle);
      control.rectangle = null;
      panel.hidden = true;
    }

    function select(label, name, choices) {
      const wrap = el('label', null, label + ' ');
      const node = el('select');
      node.name = name;
      choices.forEach(([value, text]) => { const o = el('option', null, text); o.value = value; node.appendChild(o); });
      node.addEventListener('change', updateLink);
      wrap.appendChild(node);
      panel.appendChild(wrap);
      return node;
    }

    function onDown(e) {
      if (!drawing || (e.originalEvent && e.originalEvent.button !== 0)) return;
      clearRectangle();
      start = e.latlng;
      control.rectangle = L.rectangle(L.latLngBounds(start, start),
        { color: '#b30000', weight: 2, dashArray: '6 4', fillOpacity: 0.08, interactive: false }).addTo(map);
    }
    function onMove(e) {
      if (drawing && start && control.rectangle) control.rectangle.setBounds(L.latLngBounds(start, e.latlng));
    }
    function onUp(e) {
      if (!drawing || !start) return;
      control.rectangle.setBounds(L.latLngBounds(start, e.latlng));
      const size = map.latLngToContainerPoint(start).subtract(map.latLngToContainerPoint(e.latlng));
      setDrawing(false);
      if (Math.abs(size.x) < 5 || Math.abs(size.y) < 5) { clearRectangle(); return; } // a click, not a drag
      panel.hidden = false;
      updateLink();
    }
    function onKey(e) {
      if (e.key !== 'Escape') return;
      if (drawing) { clearRectangle(); setDrawing(false); } else if (control.rectangle) clearRectangle();
    }

    control.onAdd = function () {
      box = el('div', 'leaflet-bar wm-print-rect');
      button = el('a', 'wm-print-rect-button', S.priority_rect_button);
      button.href = '#';
      button.setAttribute('role', 'button');
      button.title = S.priority_rect_help;
      button.setAttribute('aria-pressed', 'false');
      button.addEventListener('click', (e) => { e.preventDefault(); setDrawing(!drawing); });
      box.appendChild(button);
      panel = el('div', 'wm-print-rect-panel');
      panel.hidden = true;
      paper = select(S.priority_rect_paper, 'paper', [['A4', 'A4'], ['A3', 'A3']]);
      orientation = select(S.priority_rect_orientation, 'orientation',
        [['portrait', S.priority_rect_portrait], ['landscape', S.priority_rect_landscape]]);
      link = el('a', 'wm-print-rect-link', S.priority_rect_pdf);
      link.target = '_blank';
      link.rel = 'noopener';
      panel.appendChild(link);
      const cancel = el('button', 'wm-print-rect-clear', S.priority_rect_clear);
      cancel.type = 'button';
      cancel.addEventListener('click', clearRectangle);
      panel.appendChild(cancel);
      box.appendChild(panel);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      map.on('mousedown', onDown).on('mousemove', onMove).on('mouseup', onUp);
      document.addEventListener('keydown', onKey);
      return box;
    };
    control.refresh = updateLink;
    return control.addTo(map);
  }

  window.WebmapCommon = Object.freeze({ el, debounce, format, query, labelTable, printRectangleControl });
})(window, document);
