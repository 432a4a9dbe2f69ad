/*
 * webmap.js: the map page of webmap (SPDX-License-Identifier: GPL-3.0-or-later).
 *
 * Started by the folium page with ``WebMap.start(leafletMap, config)``. Every overlay is loaded from the
 * features API for the current view (padded), on moveend, debounced, stale requests aborted. Nothing
 * is inlined in the page and nothing is asked of any host but the app itself.
 *
 * Data from files is never parsed as HTML: popups, labels, legends and search hits are built with
 * textContent; the few strings handed to Leaflet as HTML (layer control names, attribution) are escaped.
 *
 * Hooks for tests and for the curious: ``window.webmapApp`` (the App below) holds ``layers[kind]``,
 * ``counts[kind]``, ``loadCount``, ``idleCount``, ``pending``; the map container carries
 * ``data-state="loading" | "ready"``.
 *
 * Plain ES2017, no build step.
 */
(function (window, document) {
  'use strict';

  const L = window.L;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // Qualitative palette for values without a colour in the layer style (owners): ColorBrewer Dark2,
  // then Paired's dark hues. Assigned in sorted order of the codes, so the same data gives the same colours.
  const PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d',
    '#1f78b4', '#b15928', '#6a3d9a', '#33a02c', '#666666'];
  const DEFAULT_COLOR = '#3388ff';
  const NEUTRAL = '#555555';
  const MOVE_DEBOUNCE_MS = 200;
  const FILTER_DEBOUNCE_MS = 150;
  const SEARCH_DEBOUNCE_MS = 300;
  const VIEW_PADDING = 0.25;
  const HIGHLIGHT_MS = 4000;
  const POINT_MAX_ZOOM = 17;
  const LABEL_MIN_ZOOM = 9;

  // ---------------------------------------------------------------------------------------------
  // small helpers (el, debounce, format, query: static/common.js, shared with the other map pages)

  const { el, debounce, format, query } = window.WebmapCommon;

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach((key) => node.setAttribute(key, attrs[key]));
    return node;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    }[c]));
  }

  async function fetchJSON(url, signal) {
    const response = await fetch(url, {
      signal: signal, credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      body = null;
    }
    if (!response.ok) {
      const error = new Error((body && body.error) || ('HTTP ' + response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function isAbort(err) {
    return err && err.name === 'AbortError';
  }

  // ---------------------------------------------------------------------------------------------
  // geometry: where to put the label of a polygon (inside it, near its centre)

  function ringArea(ring) {
    let sum = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      sum += (ring[j][0] * ring[i][1]) - (ring[i][0] * ring[j][1]);
    }
    return sum / 2;
  }

  function ringCentroid(ring) {
    let x = 0; let y = 0; let area = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const f = (ring[j][0] * ring[i][1]) - (ring[i][0] * ring[j][1]);
      x += (ring[j][0] + ring[i][0]) * f;
      y += (ring[j][1] + ring[i][1]) * f;
      area += f;
    }
    if (area === 0) return ring[0];
    return [x / (3 * area), y / (3 * area)];
  }

  function inRing(point, ring) {
    let inside = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const xi = ring[i][0]; const yi = ring[i][1]; const xj = ring[j][0]; const yj = ring[j][1];
      if (((yi > point[1]) !== (yj > point[1])) && (point[0] < ((xj - xi) * (point[1] - yi)) / (yj - yi) + xi)) {
        inside = !inside;
      }
    }
    return inside;
  }

  function inPolygon(point, rings) {
    if (!inRing(point, rings[0])) return false;
    for (let k = 1; k < rings.length; k++) if (inRing(point, rings[k])) return false;
    return true;
  }

  // The centroid of the largest part when it falls inside; otherwise the middle of the widest
  // stretch of the horizontal line through it (concave districts, river bends).
  function labelPoint(geometry) {
    if (!geometry) return null;
    let polygons = null;
    if (geometry.type === 'Polygon') polygons = [geometry.coordinates];
    else if (geometry.type === 'MultiPolygon') polygons = geometry.coordinates;
    if (!polygons || !polygons.length) return null;
    let best = null; let bestArea = -1;
    polygons.forEach((rings) => {
      if (!rings.length || rings[0].length < 3) return;
      const area = Math.abs(ringArea(rings[0]));
      if (area > bestArea) { bestArea = area; best = rings; }
    });
    if (!best) return null;
    const centre = ringCentroid(best[0]);
    if (inPolygon(centre, best)) return centre;
    const y = centre[1];
    const xs = [];
    best.forEach((ring) => {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const a = ring[j]; const b = ring[i];
        if ((a[1] > y) !== (b[1] > y)) xs.push(a[0] + ((y - a[1]) * (b[0] - a[0])) / (b[1] - a[1]));
      }
    });
    xs.sort((p, q) => p - q);
    let widest = null;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      if (!widest || xs[k + 1] - xs[k] > widest[1] - widest[0]) widest = [xs[k], xs[k + 1]];
    }
    return widest ? [(widest[0] + widest[1]) / 2, y] : best[0][0];
  }

  // ---------------------------------------------------------------------------------------------
  // symbols, shared by the map and the legend

  function hatchId(kind) {
    return 'wm-hatch-' + kind;
  }

  // Diagonal lines as an SVG pattern, usable as fill="url(#wm-hatch-<kind>)" by any SVG in the page.
  function hatchPattern(kind, style) {
    const colour = style.fill_color || style.color || NEUTRAL;
    const opacity = style.fill_opacity === undefined ? 0.35 : Number(style.fill_opacity);
    const pattern = svgEl('pattern', {
      id: hatchId(kind), patternUnits: 'userSpaceOnUse', width: 8, height: 8,
      patternTransform: 'rotate(45)',
    });
    pattern.appendChild(svgEl('rect', { width: 8, height: 8, fill: colour, 'fill-opacity': Math.min(0.5, opacity / 3) }));
    pattern.appendChild(svgEl('line', {
      x1: 0, y1: 0, x2: 0, y2: 8, stroke: colour, 'stroke-width': 2.5, 'stroke-opacity': Math.min(1, opacity * 2.4),
    }));
    return pattern;
  }

  function trianglePath(size) {
    const s = size;
    return 'M' + (s / 2) + ' 1.5 L' + (s - 1.5) + ' ' + (s - 2) + ' L1.5 ' + (s - 2) + ' Z';
  }

  // Incidents: a triangle (a warning sign), so they never read as stations (circles).
  function incidentSymbol(colour, radius) {
    const size = Math.round(2 * radius + 6);
    const svg = svgEl('svg', { width: size, height: size, viewBox: '0 0 ' + size + ' ' + size, 'aria-hidden': 'true' });
    svg.appendChild(svgEl('path', { d: trianglePath(size), fill: colour, stroke: '#ffffff', 'stroke-width': 1.5, 'stroke-linejoin': 'round' }));
    return svg;
  }

  // Key sites given as points: a hatched diamond in the site colour.
  function siteSymbol(kind, style) {
    const size = Math.round(2 * (style.radius || 7) + 4);
    const half = size / 2;
    const svg = svgEl('svg', { width: size, height: size, viewBox: '0 0 ' + size + ' ' + size, 'aria-hidden': 'true' });
    const d = 'M' + half + ' 1 L' + (size - 1) + ' ' + half + ' L' + half + ' ' + (size - 1) + ' L1 ' + half + ' Z';
    svg.appendChild(svgEl('path', { d: d, fill: '#ffffff' }));
    svg.appendChild(svgEl('path', {
      d: d, fill: style.hatch ? 'url(#' + hatchId(kind) + ')' : (style.fill_color || style.color || NEUTRAL),
      stroke: style.color || NEUTRAL, 'stroke-width': 2,
    }));
    return svg;
  }

  function swatchSvg(width, height) {
    return svgEl('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, 'aria-hidden': 'true', class: 'wm-swatch' });
  }

  function lineSwatch(colour, weight, dash) {
    const svg = swatchSvg(30, 14);
    const attrs = { x1: 2, y1: 7, x2: 28, y2: 7, stroke: colour, 'stroke-width': weight, 'stroke-linecap': 'butt' };
    if (dash) attrs['stroke-dasharray'] = dash;
    svg.appendChild(svgEl('line', attrs));
    return svg;
  }

  function circleSwatch(colour, radius) {
    const size = Math.max(14, Math.ceil(2 * radius + 4));
    const svg = swatchSvg(30, size);
    svg.appendChild(svgEl('circle', { cx: 15, cy: size / 2, r: radius, fill: colour, 'fill-opacity': 0.9, stroke: '#ffffff', 'stroke-width': 1.5 }));
    svg.appendChild(svgEl('circle', { cx: 15, cy: size / 2, r: radius + 0.75, fill: 'none', stroke: '#333333', 'stroke-width': 0.5 }));
    return svg;
  }

  function polygonSwatch(kind, style) {
    const svg = swatchSvg(30, 16);
    const fill = style.hatch ? 'url(#' + hatchId(kind) + ')' : (style.fill_color || style.color || NEUTRAL);
    const opacity = style.hatch ? 1 : (style.fill_opacity === undefined ? 0.2 : style.fill_opacity);
    const attrs = {
      x: 2, y: 2, width: 26, height: 12, fill: fill, 'fill-opacity': opacity,
      stroke: style.color || NEUTRAL, 'stroke-width': Math.min(style.weight || 1, 3),
    };
    if (style.dash_array) attrs['stroke-dasharray'] = style.dash_array;
    svg.appendChild(svgEl('rect', attrs));
    return svg;
  }

  function wrapSymbol(svg) {
    const box = el('span', 'wm-swatch-box');
    box.appendChild(svg);
    return box;
  }

  // ---------------------------------------------------------------------------------------------
  // values: formatting for people (Vietnamese first)

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  class Formatter {
    constructor(lang, strings) {
      this.lang = lang;
      this.strings = strings;
      this.numbers = new Intl.NumberFormat(lang === 'vi' ? 'vi-VN' : 'en-GB', { maximumFractionDigits: 6 });
    }

    number(value) {
      return this.numbers.format(value);
    }

    date(text, withTime) {
      const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/.exec(String(text));
      if (!m) return String(text);
      const day = this.lang === 'vi' ? m[3] + '/' + m[2] + '/' + m[1] : m[1] + '-' + m[2] + '-' + m[3];
      return withTime && m[4] ? day + ' ' + m[4] + ':' + m[5] : day;
    }

    value(field, raw) {
      if (raw === null || raw === undefined || raw === '') return null;
      if (field) {
        if (field.values && Object.prototype.hasOwnProperty.call(field.values, String(raw))) {
          return field.values[String(raw)];
        }
        if (field.type === 'boolean') {
          const yes = raw === true || raw === 1 || raw === '1' || String(raw).toLowerCase() === 'true';
          return yes ? this.strings.yes || '✓' : this.strings.no || '✗';
        }
        if ((field.type === 'integer' || field.type === 'number') && typeof raw === 'number') return this.number(raw);
        if (field.type === 'date') return this.date(raw, false);
        if (field.type === 'datetime') return this.date(raw, true);
      }
      if (typeof raw === 'object') return JSON.stringify(raw);
      return String(raw);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // the application

  class App {
    constructor(map, config) {
      this.map = map;
      this.config = config || {};
      this.strings = this.config.strings || {};
      this.lang = this.config.lang || 'vi';
      this.api = this.config.api || {};
      this.pageFeatures = this.config.page_features || 2000;
      this.fmt = new Formatter(this.lang, this.strings);
      this.defs = {};
      this.order = [];
      (this.config.layers || []).forEach((def, index) => {
        this.defs[def.kind] = def;
        this.order.push(def.kind);
        def.index = index;
      });
      this.info = {};          // kind -> /api/layers entry (count, bbox, ...)
      this.layers = {};        // kind -> overlay (L.LayerGroup) in the layer control
      this.parts = {};         // kind -> {features, labels, extras}
      this.data = {};          // kind -> features of the last answer
      this.counts = {};        // kind -> features drawn
      this.loaded = {};        // kind -> {bounds, complete, key, controller}
      this.domains = {};       // kind -> field -> sorted values (palette by code)
      this.notices = {};
      this.lastUrl = {};       // kind -> URL of the last features request
      this.filters = {};       // kind -> {field, values: [] | null, since, until}
      this.pending = 0;
      this.loadCount = 0;
      this.idleCount = 0;
      this.moving = false;
      this.started = false;
      this.highlight = null;
      this.search = { results: [], controller: null, query: null };
      this.container = map.getContainer();
      this.setState('loading');
      // Without a basemap no tile layer bounds the zoom; clustering needs a maximum.
      if (map.options.maxZoom === undefined) map.setMaxZoom(19);

      this.scheduleLoad = debounce(() => this.loadVisible(), MOVE_DEBOUNCE_MS);
      this.initPanes();
      this.initDefs();
      this.initAttribution();
      this.initCoordinates();
      this.initNotice();
      this.initHash();
      this.initSearch();
      map.on('movestart zoomstart', () => { this.moving = true; this.updateState(); });
      map.on('moveend', () => {
        this.moving = false;
        this.scheduleLoad();
        this.updateLabels();
        Object.keys(this.parts).forEach((kind) => this.updateSymbols(kind));
        this.writeHash();
        this.updateState();
      });
      // layeradd, not overlayadd: the search and the zoom buttons also switch layers on
      map.on('layeradd', (e) => { if (e.layer && e.layer.wmKind) this.onOverlay(e.layer, true); });
      map.on('layerremove', (e) => { if (e.layer && e.layer.wmKind) this.onOverlay(e.layer, false); });
      // paper is wider than the window: let Leaflet fill it, then come back
      window.addEventListener('beforeprint', () => map.invalidateSize({ pan: false }));
      window.addEventListener('afterprint', () => map.invalidateSize({ pan: false }));
      // print a drawn rectangle as a patrol map: signed-in users only (the page gives the URL only to them)
      this.printControl = this.api.print
        ? window.WebmapCommon.printRectangleControl(map, this.strings, { url: this.api.print }) : null;
      this.ready = this.init();
    }

    s(key, fallback) {
      return this.strings[key] || fallback || key;
    }

    // -- state for tests and for the eye ----------------------------------------------------------
    setState(state) {
      if (this.container.getAttribute('data-state') !== state) this.container.setAttribute('data-state', state);
    }

    updateState() {
      const idle = this.started && !this.moving && !this.scheduleLoad.pending() && this.pending === 0
        && !(this.applyLater && this.applyLater.pending());
      if (idle && this.container.getAttribute('data-state') !== 'ready') {
        this.idleCount += 1;
        this.setState('ready');
      } else if (!idle) {
        this.setState('loading');
      }
    }

    // -- set-up -------------------------------------------------------------------------------------
    initPanes() {
      // One pane per layer, stacked in catalogue order: redrawing a layer never buries another.
      this.panes = {};
      this.renderers = {};
      this.order.forEach((kind, index) => {
        const pathPane = 'wm-' + kind;
        const markerPane = 'wm-' + kind + '-markers';
        this.map.createPane(pathPane).style.zIndex = String(410 + index);
        this.map.createPane(markerPane).style.zIndex = String(610 + index);
        this.panes[kind] = { path: pathPane, marker: markerPane };
        this.renderers[kind] = L.svg({ pane: pathPane, padding: 0.5 });
      });
      this.map.createPane('wm-highlight').style.zIndex = '600';
      this.map.getPane('wm-highlight').style.pointerEvents = 'none';
      this.highlightRenderer = L.svg({ pane: 'wm-highlight', padding: 0.5 });
    }

    initDefs() {
      // Hatch patterns live in one hidden SVG; ids are document-wide, so every path and swatch can use them.
      const svg = svgEl('svg', { width: 0, height: 0, class: 'wm-defs', 'aria-hidden': 'true', focusable: 'false' });
      const defs = svgEl('defs');
      this.order.forEach((kind) => {
        const style = this.defs[kind].style || {};
        if (style.hatch) defs.appendChild(hatchPattern(kind, style));
      });
      svg.appendChild(defs);
      document.body.appendChild(svg);
    }

    initAttribution() {
      const text = this.strings.attribution;
      if (!this.map.attributionControl) {
        this.map.attributionControl = L.control.attribution().addTo(this.map);
      }
      // A plain prefix: no link that leads off an offline network.
      this.map.attributionControl.setPrefix('Leaflet');
      if (text) this.map.attributionControl.addAttribution('<span class="wm-attribution">' + escapeHtml(text) + '</span>');
    }

    initCoordinates() {
      const app = this;
      const Coordinates = L.Control.extend({
        options: { position: 'bottomleft' },
        onAdd: function () {
          const div = el('div', 'wm-coords leaflet-control');
          div.title = 'WGS 84 (EPSG:4326): ' + (app.lang === 'vi' ? 'vĩ độ, kinh độ' : 'latitude, longitude');
          app.coordsText = div;
          app.showCoordinates(app.map.getCenter());
          return div;
        },
      });
      this.map.addControl(new Coordinates());
      this.map.on('mousemove', (e) => this.showCoordinates(e.latlng));
      this.map.on('mouseover', () => { this.mouseOnMap = true; });
      this.map.on('mouseout', () => { this.mouseOnMap = false; });
      this.map.on('moveend', () => { if (!this.mouseOnMap) this.showCoordinates(this.map.getCenter()); });
    }

    showCoordinates(latlng) {
      if (!this.coordsText || !latlng) return;
      this.coordsText.textContent = this.s('coordinates') + ': ' + latlng.lat.toFixed(5) + ', ' + latlng.lng.toFixed(5);
    }

    initNotice() {
      this.noticeBox = el('div', 'wm-notice');
      this.noticeBox.setAttribute('role', 'status');
      this.noticeBox.setAttribute('aria-live', 'polite');
      this.noticeBox.hidden = true;
      L.DomEvent.disableClickPropagation(this.noticeBox);
      L.DomEvent.disableScrollPropagation(this.noticeBox);
      this.container.appendChild(this.noticeBox);
    }

    setNotice(key, text) {
      if (text) this.notices[key] = text;
      else delete this.notices[key];
      const keys = Object.keys(this.notices);
      this.noticeBox.textContent = '';
      keys.forEach((k) => this.noticeBox.appendChild(el('div', 'wm-notice-line', this.notices[k])));
      this.noticeBox.hidden = keys.length === 0;
    }

    // The view in the address (#map=zoom/lat/lon), so a reload or the language switch keeps it.
    initHash() {
      const m = /#map=(\d{1,2})\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)/.exec(window.location.hash || '');
      if (m) {
        const zoom = Number(m[1]); const lat = Number(m[2]); const lon = Number(m[3]);
        if (Math.abs(lat) <= 90 && Math.abs(lon) <= 180) this.map.setView([lat, lon], zoom, { animate: false });
      }
      this.writeHash();
    }

    writeHash() {
      const c = this.map.getCenter();
      const hash = '#map=' + this.map.getZoom() + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5);
      try {
        window.history.replaceState(window.history.state, '', hash);
      } catch (err) {
        // a sandboxed page may refuse; the hash is a convenience
      }
      const link = document.getElementById('wm-lang');
      if (link) link.setAttribute('href', link.getAttribute('href').split('#')[0] + hash);
    }

    async init() {
      let body;
      try {
        body = await fetchJSON(this.url(this.api.layers, {}));
      } catch (err) {
        this.setNotice('layers', this.s('load_error') + ': ' + err.message);
        this.started = true;
        this.updateState();
        return;
      }
      (body.layers || []).forEach((info) => { this.info[info.kind] = info; });
      const kinds = this.order.filter((kind) => this.info[kind] && this.info[kind].count > 0);
      kinds.forEach((kind) => this.createOverlay(kind));
      if (!kinds.length) this.setNotice('empty', this.s('no_layers'));
      this.initLayerControl(kinds);
      this.initLegend(kinds);
      this.initFilters(kinds);
      kinds.forEach((kind) => this.map.addLayer(this.layers[kind]));
      await this.loadDomains(kinds);
      this.started = true;
      this.loadVisible();
      this.updateLabels();
      this.updateState();
    }

    url(base, params) {
      const all = Object.assign({ lang: this.lang }, params);
      return base + (base.indexOf('?') >= 0 ? '&' : '?') + query(all);
    }

    featuresUrl(kind, params) {
      return this.url(String(this.api.features).replace('__KIND__', encodeURIComponent(kind)), params);
    }

    // -- styles ---------------------------------------------------------------------------------
    field(kind, name) {
      return (this.defs[kind].fields || []).find((f) => f.name === name) || null;
    }

    // color_by: a field name (palette by sorted code) or {field, values}; otherwise style.color.
    colourRule(kind) {
      const style = this.defs[kind].style || {};
      const rule = style.color_by;
      if (!rule) return null;
      if (typeof rule === 'string') return { field: rule, values: null };
      return { field: rule.field, values: rule.values || null };
    }

    colourFor(kind, props) {
      const style = this.defs[kind].style || {};
      const rule = this.colourRule(kind);
      if (!rule) return style.color || DEFAULT_COLOR;
      const value = props ? props[rule.field] : null;
      if (rule.values) return rule.values[String(value)] || style.color || NEUTRAL;
      if (value === null || value === undefined) return NEUTRAL;
      const domain = this.domainOf(kind, rule.field);
      let index = domain.indexOf(String(value));
      if (index < 0) {
        domain.push(String(value)); // a value the domain request did not see: next colour, legend follows
        index = domain.length - 1;
        this.legendDirty = true;
      }
      return PALETTE[index % PALETTE.length];
    }

    domainOf(kind, field) {
      this.domains[kind] = this.domains[kind] || {};
      this.domains[kind][field] = this.domains[kind][field] || [];
      return this.domains[kind][field];
    }

    byValue(rule, props, fallback) {
      if (!rule || !rule.values || !props) return fallback;
      const v = rule.values[String(props[rule.field])];
      return v === undefined ? fallback : v;
    }

    pathStyle(kind, props) {
      const style = this.defs[kind].style || {};
      const colour = this.colourFor(kind, props);
      const out = {
        color: colour,
        weight: this.byValue(style.width_by, props, style.weight || (style.kind === 'line' ? 3 : 2)),
        opacity: style.opacity === undefined ? 0.95 : style.opacity,
        dashArray: this.byValue(style.dash_by, props, style.dash_array || null),
        lineCap: 'butt',
        lineJoin: 'round',
        className: 'wm-f wm-' + kind,
      };
      if (style.kind === 'line') {
        out.fill = false;
      } else if (style.hatch) {
        out.fillColor = 'url(#' + hatchId(kind) + ')';
        out.fillOpacity = 1;
      } else {
        out.fillColor = style.fill_color || colour;
        out.fillOpacity = style.fill_opacity === undefined ? 0.2 : style.fill_opacity;
      }
      return out;
    }

    pointLayer(kind, feature, latlng) {
      const def = this.defs[kind];
      const style = def.style || {};
      const props = feature.properties || {};
      const panes = this.panes[kind];
      if (style.kind === 'polygon') {
        // points of an area layer (key sites given as a point): a distinct, hatched marker
        const size = Math.round(2 * (style.radius || 7) + 4);
        const icon = L.divIcon({ className: 'wm-site-icon wm-' + kind, html: siteSymbol(kind, style), iconSize: [size, size] });
        return L.marker(latlng, { icon: icon, pane: panes.marker, keyboard: false });
      }
      const colour = this.colourFor(kind, props);
      const radius = this.byValue(style.radius_by, props, style.radius || 5);
      if (def.cluster) {
        const size = Math.round(2 * radius + 6);
        const icon = L.divIcon({ className: 'wm-point-icon wm-' + kind, html: incidentSymbol(colour, radius), iconSize: [size, size] });
        return L.marker(latlng, { icon: icon, pane: panes.marker, keyboard: false });
      }
      return L.circleMarker(latlng, Object.assign({ renderer: this.renderers[kind], pane: panes.path },
        this.pointStyle(kind, props)));
    }

    pointStyle(kind, props) {
      const style = this.defs[kind].style || {};
      return {
        radius: this.byValue(style.radius_by, props, style.radius || 5),
        color: '#ffffff',
        weight: 1.5,
        opacity: 1,
        fill: true,
        fillColor: this.colourFor(kind, props),
        fillOpacity: 0.9,
        dashArray: null,
        className: 'wm-f wm-' + kind,
      };
    }

    // GeoJSON's style callback also reaches circle markers: points keep their point style.
    featureStyle(kind, feature) {
      const props = feature.properties || {};
      const type = feature.geometry && feature.geometry.type;
      const style = this.defs[kind].style || {};
      if ((type === 'Point' || type === 'MultiPoint') && style.kind !== 'polygon') return this.pointStyle(kind, props);
      return this.pathStyle(kind, props);
    }

    // -- overlays -------------------------------------------------------------------------------
    createOverlay(kind) {
      const def = this.defs[kind];
      const options = {
        pane: this.panes[kind].path,
        renderer: this.renderers[kind],
        style: (feature) => this.featureStyle(kind, feature),
        pointToLayer: (feature, latlng) => this.pointLayer(kind, feature, latlng),
        onEachFeature: (feature, layer) => this.bindFeature(kind, feature, layer),
      };
      const parts = { labels: L.layerGroup(), symbols: L.layerGroup(), small: [], options: options };
      if (def.cluster) {
        parts.features = L.markerClusterGroup({
          clusterPane: this.panes[kind].marker,
          disableClusteringAtZoom: 15,
          maxClusterRadius: 45,
          showCoverageOnHover: false,
          spiderfyOnMaxZoom: true,
          chunkedLoading: true,
          iconCreateFunction: (cluster) => this.clusterIcon(kind, cluster),
        });
        parts.extras = L.geoJSON(null, options); // anything but points cannot be clustered
      } else {
        parts.features = L.geoJSON(null, options);
      }
      const members = [parts.features, parts.labels, parts.symbols];
      if (parts.extras) members.push(parts.extras);
      this.parts[kind] = parts;
      this.layers[kind] = L.layerGroup(members);
      this.layers[kind].wmKind = kind;
      this.loaded[kind] = { bounds: null, complete: false, key: null, controller: null };
      this.counts[kind] = 0;
    }

    clusterIcon(kind, cluster) {
      const n = cluster.getChildCount();
      const size = n < 10 ? 26 : n < 100 ? 32 : n < 1000 ? 38 : 44;
      const div = el('div', 'wm-cluster-inner', this.fmt.number(n));
      return L.divIcon({ className: 'wm-cluster wm-cluster-' + kind, html: div, iconSize: [size, size] });
    }

    bindFeature(kind, feature, layer) {
      layer.feature = feature;
      layer.bindPopup(() => this.popupContent(kind, feature), { maxWidth: 380, minWidth: 220, autoPanPadding: [30, 30] });
    }

    render(kind, collection) {
      const parts = this.parts[kind];
      const def = this.defs[kind];
      const features = (collection.features || []).filter((f) => f && f.geometry);
      this.data[kind] = features;
      parts.labels.clearLayers();
      if (def.cluster) {
        const points = []; const others = [];
        features.forEach((f) => (f.geometry.type === 'Point' ? points : others).push(f));
        const tmp = L.geoJSON({ type: 'FeatureCollection', features: points }, parts.options);
        parts.features.clearLayers();
        parts.features.addLayers(tmp.getLayers());
        parts.extras.clearLayers();
        if (others.length) parts.extras.addData({ type: 'FeatureCollection', features: others });
      } else {
        parts.features.clearLayers();
        parts.features.addData({ type: 'FeatureCollection', features: features });
      }
      this.drawLabels(kind, features);
      this.drawSymbols(kind);
      this.counts[kind] = features.length;
      if (this.legendDirty) this.renderLegend();
      this.updateFilterStatus(kind);
      if (this.highlight && this.highlight.kind === kind && this.highlight.waiting) this.drawHighlight();
    }

    drawLabels(kind, features) {
      const style = this.defs[kind].style || {};
      if (!style.label_field) return;
      features.forEach((feature) => {
        const text = (feature.properties || {})[style.label_field];
        const point = labelPoint(feature.geometry);
        if (!point || text === null || text === undefined || text === '') return;
        const span = el('span', 'wm-label-text', text);
        const tooltip = L.tooltip({
          permanent: true, direction: 'center', interactive: false, opacity: 1,
          className: 'wm-label wm-label-' + kind,
        }).setLatLng([point[1], point[0]]).setContent(span);
        this.parts[kind].labels.addLayer(tooltip);
      });
    }

    // Areas with a point symbol in their style (key sites) keep a marker where they are too small to
    // see, so that a building-sized site is not lost at city scale.
    drawSymbols(kind) {
      const style = this.defs[kind].style || {};
      const parts = this.parts[kind];
      parts.symbols.clearLayers();
      parts.small = [];
      if (style.kind !== 'polygon' || !style.radius) return;
      parts.features.eachLayer((layer) => {
        if (!(layer instanceof L.Polygon) || !layer.feature) return;
        const point = labelPoint(layer.feature.geometry);
        if (!point) return;
        const marker = this.pointLayer(kind, layer.feature, L.latLng(point[1], point[0]));
        this.bindFeature(kind, layer.feature, marker);
        marker.wmSymbol = true;
        parts.small.push({ marker: marker, bounds: layer.getBounds() });
      });
      this.updateSymbols(kind);
    }

    updateSymbols(kind) {
      const parts = this.parts[kind];
      if (!parts || !parts.small.length) return;
      const zoom = this.map.getZoom();
      parts.small.forEach((entry) => {
        const a = this.map.project(entry.bounds.getSouthWest(), zoom);
        const b = this.map.project(entry.bounds.getNorthEast(), zoom);
        const tiny = Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y)) < 14;
        if (tiny && !parts.symbols.hasLayer(entry.marker)) parts.symbols.addLayer(entry.marker);
        if (!tiny && parts.symbols.hasLayer(entry.marker)) parts.symbols.removeLayer(entry.marker);
      });
    }

    updateLabels() {
      // Names of areas only once they can be read (not at country scale).
      const show = this.map.getZoom() >= LABEL_MIN_ZOOM;
      Object.keys(this.parts).forEach((kind) => {
        const group = this.layers[kind];
        const labels = this.parts[kind].labels;
        if (show && !group.hasLayer(labels)) group.addLayer(labels);
        if (!show && group.hasLayer(labels)) group.removeLayer(labels);
      });
    }

    onOverlay(layer, added) {
      const kind = layer && layer.wmKind;
      if (!kind) return;
      if (added) {
        this.loadKind(kind);
      } else {
        const state = this.loaded[kind];
        if (state.controller) state.controller.abort();
        this.setNotice('limit-' + kind, null);
        this.setNotice('error-' + kind, null);
      }
      this.legendVisibility();
      this.updateState();
    }

    // -- loading --------------------------------------------------------------------------------
    filterParams(kind) {
      const filter = this.filters[kind];
      const params = {};
      if (!filter) return params;
      if (filter.values) params[filter.field] = filter.values.join(',');
      if (filter.since) params.since = filter.since;
      if (filter.until) params.until = filter.until;
      return params;
    }

    viewBounds() {
      const b = this.map.getBounds().pad(VIEW_PADDING);
      const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
      const west = clamp(b.getWest(), -180, 180); const east = clamp(b.getEast(), -180, 180);
      const south = clamp(b.getSouth(), -90, 90); const north = clamp(b.getNorth(), -90, 90);
      return L.latLngBounds([south, west], [north, east]);
    }

    loadVisible() {
      if (!this.started) return;
      Object.keys(this.layers).forEach((kind) => this.loadKind(kind));
      this.updateState();
    }

    loadKind(kind, force) {
      if (!this.started || !this.map.hasLayer(this.layers[kind])) return;
      const state = this.loaded[kind];
      const params = this.filterParams(kind);
      const key = JSON.stringify(params);
      const view = this.map.getBounds();
      // The last answer already holds everything in view: nothing to ask.
      if (!force && state.bounds && state.complete && state.key === key && state.bounds.contains(view)) return;
      if (state.controller) state.controller.abort();
      const filter = this.filters[kind];
      if (filter && filter.values && filter.values.length === 0) {
        // no type ticked: nothing can match, ask nothing
        state.controller = null;
        Object.assign(state, { bounds: L.latLngBounds([-90, -180], [90, 180]), complete: true, key: key });
        this.render(kind, { features: [] });
        this.setNotice('limit-' + kind, null);
        this.loadCount += 1;
        return;
      }
      const bounds = this.viewBounds();
      const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(6)).join(',');
      const controller = new AbortController();
      state.controller = controller;
      this.pending += 1;
      this.updateState();
      const url = this.featuresUrl(kind, Object.assign({ bbox: bbox, limit: this.pageFeatures }, params));
      this.lastUrl[kind] = url;
      fetchJSON(url, controller.signal)
        .then((collection) => {
          if (state.controller !== controller) return;
          this.render(kind, collection || {});
          Object.assign(state, { bounds: bounds, complete: !collection.limitExceeded, key: key });
          const label = this.defs[kind].label;
          this.setNotice('error-' + kind, null);
          this.setNotice('limit-' + kind, collection.limitExceeded
            ? label + ': ' + format(this.s('limit_exceeded'), { n: this.fmt.number(collection.numberReturned || collection.limit) })
            : null);
          this.loadCount += 1;
        })
        .catch((err) => {
          if (isAbort(err)) return;
          if (state.controller === controller) state.bounds = null;
          this.setNotice('error-' + kind, this.s('load_error') + ' ' + this.defs[kind].label + ': ' + err.message);
          this.loadCount += 1;
        })
        .then(() => {
          if (state.controller === controller) state.controller = null;
          this.pending -= 1;
          this.updateState();
        });
    }

    // Colours by a field without fixed colours (owners) need every value of the layer, sorted, so a
    // colour never changes when the view does. One features request without a bbox gives them; when it
    // holds the whole layer it also serves as the layer's data, and no view request is needed.
    async loadDomains(kinds) {
      const jobs = kinds.map(async (kind) => {
        const rule = this.colourRule(kind);
        if (!rule || rule.values) return;
        const info = this.info[kind] || {};
        const known = info.values && info.values[rule.field];
        if (Array.isArray(known)) {
          this.domains[kind] = { [rule.field]: known.map(String).sort() };
          return;
        }
        this.pending += 1;
        try {
          const collection = await fetchJSON(this.featuresUrl(kind, { limit: this.pageFeatures }));
          const values = new Set();
          (collection.features || []).forEach((f) => {
            const v = (f.properties || {})[rule.field];
            if (v !== null && v !== undefined && v !== '') values.add(String(v));
          });
          this.domains[kind] = { [rule.field]: Array.from(values).sort() };
          if (!collection.limitExceeded && !this.filters[kind]) {
            this.render(kind, collection);
            Object.assign(this.loaded[kind], {
              bounds: L.latLngBounds([-90, -180], [90, 180]), complete: true, key: JSON.stringify({}),
            });
            this.loadCount += 1;
          }
        } catch (err) {
          this.setNotice('error-' + kind, this.s('load_error') + ' ' + this.defs[kind].label + ': ' + err.message);
        } finally {
          this.pending -= 1;
        }
      });
      await Promise.all(jobs);
      this.renderLegend();
    }

    zoomToLayer(kind) {
      const info = this.info[kind];
      if (!info || !info.bbox) return;
      const b = info.bbox;
      if (!this.map.hasLayer(this.layers[kind])) this.map.addLayer(this.layers[kind]);
      this.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [20, 20], maxZoom: POINT_MAX_ZOOM });
    }

    // -- popups ---------------------------------------------------------------------------------
    popupContent(kind, feature) {
      const def = this.defs[kind];
      const props = feature.properties || {};
      const box = el('div', 'wm-popup');
      const titleValue = def.name_field ? props[def.name_field] : null;
      const title = titleValue !== null && titleValue !== undefined && titleValue !== ''
        ? titleValue : (feature.id !== null && feature.id !== undefined ? feature.id : def.label);
      box.appendChild(el('div', 'wm-popup-layer', def.label));
      box.appendChild(el('div', 'wm-popup-title', title));
      const table = el('table', 'wm-popup-table');
      const known = new Set();
      (def.fields || []).forEach((field) => {
        known.add(field.name);
        const text = this.fmt.value(field, props[field.name]);
        if (text === null) return;
        const row = el('tr');
        row.appendChild(el('th', null, field.label));
        const cell = el('td', null, text);
        if (field.values && field.values[String(props[field.name])]) cell.title = String(props[field.name]);
        row.appendChild(cell);
        table.appendChild(row);
      });
      // columns of the source file that the layer does not define, as they came
      Object.keys(props).forEach((name) => {
        if (known.has(name)) return;
        const text = this.fmt.value(null, props[name]);
        if (text === null) return;
        const row = el('tr', 'wm-popup-extra');
        row.appendChild(el('th', null, name));
        row.appendChild(el('td', null, text));
        table.appendChild(row);
      });
      box.appendChild(table);
      return box;
    }

    // -- layer control and legend ---------------------------------------------------------------
    initLayerControl(kinds) {
      if (!kinds.length) return;
      const overlays = {};
      // topmost layer first, as in QGIS
      kinds.slice().reverse().forEach((kind) => {
        const info = this.info[kind];
        const name = '<span class="wm-layer-name">' + escapeHtml(this.defs[kind].label) + '</span>'
          + ' <span class="wm-layer-count">(' + escapeHtml(this.fmt.number(info.count)) + ')</span>';
        overlays[name] = this.layers[kind];
      });
      this.layerControl = L.control.layers(null, overlays, { collapsed: false, position: 'topright' }).addTo(this.map);
      const container = this.layerControl.getContainer();
      container.classList.add('wm-layer-control');
      container.setAttribute('aria-label', this.s('layers'));
      const list = container.querySelector('.leaflet-control-layers-list');
      if (list) list.insertBefore(el('div', 'wm-control-title', this.s('layers')), list.firstChild);
    }

    panel(position, className, titleText, expanded) {
      const app = this;
      const Panel = L.Control.extend({
        options: { position: position },
        onAdd: function () {
          const div = el('div', 'wm-panel leaflet-control ' + className);
          const head = el('button', 'wm-panel-toggle', titleText);
          head.type = 'button';
          const body = el('div', 'wm-panel-body');
          head.setAttribute('aria-expanded', expanded ? 'true' : 'false');
          body.hidden = !expanded;
          head.addEventListener('click', () => {
            const open = head.getAttribute('aria-expanded') !== 'true';
            head.setAttribute('aria-expanded', open ? 'true' : 'false');
            body.hidden = !open;
            div.classList.toggle('wm-collapsed', !open);
          });
          div.classList.toggle('wm-collapsed', !expanded);
          div.appendChild(head);
          div.appendChild(body);
          L.DomEvent.disableClickPropagation(div);
          L.DomEvent.disableScrollPropagation(div);
          this.body = body;
          return div;
        },
      });
      const control = new Panel();
      control.addTo(app.map);
      return control;
    }

    initLegend(kinds) {
      this.legendKinds = kinds.slice().reverse();
      if (!kinds.length) return;
      const narrow = window.innerWidth < 700;
      this.legend = this.panel('topright', 'wm-legend', this.s('legend'), !narrow);
      this.renderLegend();
    }

    renderLegend() {
      this.legendDirty = false;
      if (!this.legend) return;
      const body = this.legend.body;
      body.textContent = '';
      this.legendSections = {};
      this.legendKinds.forEach((kind) => {
        const section = this.legendSection(kind);
        this.legendSections[kind] = section;
        body.appendChild(section);
      });
      this.legendVisibility();
    }

    legendVisibility() {
      Object.keys(this.legendSections || {}).forEach((kind) => {
        this.legendSections[kind].classList.toggle('wm-off', !this.map.hasLayer(this.layers[kind]));
      });
    }

    legendRow(symbol, text) {
      const row = el('div', 'wm-legend-row');
      row.appendChild(wrapSymbol(symbol));
      row.appendChild(el('span', 'wm-legend-label', text));
      return row;
    }

    // size and dash classes: two to a line, the legend stays short
    legendGrid(rows) {
      const grid = el('div', 'wm-legend-grid');
      rows.forEach((row) => grid.appendChild(row));
      return grid;
    }

    // One row per value of the colour field (coded values with their labels, owners as they are).
    colourLegend(section, kind, rule, swatch) {
      const field = this.field(kind, rule.field);
      section.appendChild(this.legendSubhead(field ? field.label : rule.field));
      const entries = rule.values ? this.valuesOf(kind, rule.field, rule)
        : this.domainOf(kind, rule.field).map((code) => ({ code: code, label: code }));
      entries.forEach((entry) => {
        section.appendChild(this.legendRow(swatch(this.colourFor(kind, { [rule.field]: entry.code })), entry.label));
      });
    }

    legendSubhead(text) {
      return el('div', 'wm-legend-subhead', text);
    }

    valuesOf(kind, fieldName, rule) {
      const field = this.field(kind, fieldName);
      const codes = field && field.values && Object.keys(field.values).length
        ? Object.keys(field.values) : Object.keys((rule && rule.values) || {});
      return codes.map((code) => ({ code: code, label: (field && field.values && field.values[code]) || code }));
    }

    legendSection(kind) {
      const def = this.defs[kind];
      const style = def.style || {};
      const section = el('section', 'wm-legend-section wm-legend-' + kind);
      const head = el('div', 'wm-legend-head');
      head.appendChild(el('span', 'wm-legend-title', def.label));
      const zoom = el('button', 'wm-zoom-layer');
      zoom.type = 'button';
      zoom.title = this.s('zoom_to') + ': ' + def.label;
      zoom.setAttribute('aria-label', zoom.title);
      zoom.setAttribute('data-kind', kind);
      const icon = svgEl('svg', { width: 14, height: 14, viewBox: '0 0 14 14', 'aria-hidden': 'true' });
      icon.appendChild(svgEl('path', { d: 'M1 5V1h4M9 1h4v4M13 9v4H9M5 13H1V9', fill: 'none', stroke: 'currentColor', 'stroke-width': 1.6 }));
      icon.appendChild(svgEl('circle', { cx: 7, cy: 7, r: 1.8, fill: 'currentColor' }));
      zoom.appendChild(icon);
      zoom.addEventListener('click', () => this.zoomToLayer(kind));
      head.appendChild(zoom);
      section.appendChild(head);

      const colourRule = this.colourRule(kind);
      if (style.kind === 'polygon') {
        if (def.geometry === 'any' || def.geometry === 'polygon') section.appendChild(this.legendRow(polygonSwatch(kind, style), def.geometry === 'any' ? this.s('area') : def.label));
        if (def.geometry === 'any' || def.geometry === 'point') section.appendChild(this.legendRow(siteSymbol(kind, style), this.s('point')));
      } else if (style.kind === 'line') {
        const baseWeight = style.weight || 3;
        if (colourRule) this.colourLegend(section, kind, colourRule, (colour) => lineSwatch(colour, 4, null));
        if (style.width_by) {
          const field = this.field(kind, style.width_by.field);
          section.appendChild(this.legendSubhead(field ? field.label : style.width_by.field));
          section.appendChild(this.legendGrid(this.valuesOf(kind, style.width_by.field, style.width_by).map((entry) => {
            const w = style.width_by.values[entry.code] || baseWeight;
            return this.legendRow(lineSwatch(NEUTRAL, w, null), entry.label);
          })));
        }
        if (style.dash_by) {
          const field = this.field(kind, style.dash_by.field);
          section.appendChild(this.legendSubhead(field ? field.label : style.dash_by.field));
          section.appendChild(this.legendGrid(this.valuesOf(kind, style.dash_by.field, style.dash_by).map((entry) => {
            const dash = style.dash_by.values[entry.code] || style.dash_array || null;
            return this.legendRow(lineSwatch(NEUTRAL, 3, dash), entry.label);
          })));
        }
      } else {
        const symbol = (colour, radius) => (def.cluster ? incidentSymbol(colour, radius) : circleSwatch(colour, radius));
        const baseRadius = style.radius || 5;
        if (colourRule) {
          this.colourLegend(section, kind, colourRule, (colour) => symbol(colour, baseRadius));
        } else {
          section.appendChild(this.legendRow(symbol(style.color || DEFAULT_COLOR, baseRadius), def.label));
        }
        if (style.radius_by) {
          const field = this.field(kind, style.radius_by.field);
          section.appendChild(this.legendSubhead(field ? field.label : style.radius_by.field));
          section.appendChild(this.legendGrid(this.valuesOf(kind, style.radius_by.field, style.radius_by).map((entry) => (
            this.legendRow(symbol('#9e9e9e', style.radius_by.values[entry.code] || baseRadius), entry.label)))));
        }
      }
      return section;
    }

    // -- incident filters -----------------------------------------------------------------------
    initFilters(kinds) {
      const kind = kinds.find((k) => this.defs[k].time_field);
      if (!kind) return;
      const def = this.defs[kind];
      const rule = this.colourRule(kind);
      const typeField = (rule && this.field(kind, rule.field)) || this.field(kind, 'type');
      this.filterKind = kind;
      const control = this.panel('topleft', 'wm-filters', this.s('filters'), false);
      const form = el('form', 'wm-filter-form');
      form.setAttribute('data-kind', kind);
      if (typeField && typeField.values && Object.keys(typeField.values).length) {
        const set = el('fieldset', 'wm-filter-types');
        set.appendChild(el('legend', null, this.s('types')));
        Object.keys(typeField.values).forEach((code) => {
          const label = el('label', 'wm-filter-type');
          const box = el('input');
          box.type = 'checkbox';
          box.name = 'type';
          box.value = code;
          box.checked = true;
          box.defaultChecked = true; // what the reset button restores
          label.appendChild(box);
          const colour = this.colourFor(kind, { [typeField.name]: code });
          label.appendChild(wrapSymbol(def.cluster ? incidentSymbol(colour, 4) : circleSwatch(colour, 4)));
          label.appendChild(el('span', null, typeField.values[code]));
          set.appendChild(label);
        });
        form.appendChild(set);
      }
      const dates = el('div', 'wm-filter-dates');
      [['since', this.s('since')], ['until', this.s('until')]].forEach((pair) => {
        const label = el('label', 'wm-filter-date');
        label.appendChild(el('span', null, pair[1]));
        const input = el('input');
        input.type = 'date';
        input.name = pair[0];
        input.min = '1990-01-01';
        input.max = '2100-12-31';
        label.appendChild(input);
        dates.appendChild(label);
      });
      form.appendChild(dates);
      const foot = el('div', 'wm-filter-foot');
      this.filterStatus = el('span', 'wm-filter-status');
      this.filterStatus.setAttribute('aria-live', 'polite');
      const reset = el('button', 'wm-filter-reset', this.s('reset'));
      reset.type = 'reset';
      foot.appendChild(this.filterStatus);
      foot.appendChild(reset);
      form.appendChild(foot);
      control.body.appendChild(form);
      this.filterForm = form;
      this.filterTypeField = typeField ? typeField.name : null;
      const apply = debounce(() => this.applyFilters(), FILTER_DEBOUNCE_MS);
      this.applyLater = apply;
      form.addEventListener('change', () => { apply(); this.updateState(); });
      form.addEventListener('submit', (e) => { e.preventDefault(); apply.cancel(); this.applyFilters(); });
      form.addEventListener('reset', () => { apply(); this.updateState(); }); // fields are reset after the event
      this.updateFilterStatus(kind);
    }

    applyFilters() {
      const kind = this.filterKind;
      const form = this.filterForm;
      if (!kind || !form) return;
      const filter = { field: this.filterTypeField, values: null, since: null, until: null };
      if (this.filterTypeField) {
        const boxes = Array.from(form.querySelectorAll('input[name=type]'));
        const ticked = boxes.filter((b) => b.checked).map((b) => b.value);
        filter.values = ticked.length === boxes.length ? null : ticked;
      }
      const since = form.querySelector('input[name=since]').value;
      const until = form.querySelector('input[name=until]').value;
      filter.since = since || null;
      filter.until = until || null;
      if (since && until && since > until) {
        this.setNotice('filter', this.s('since') + ' > ' + this.s('until'));
        this.updateState();
        return;
      }
      this.setNotice('filter', null);
      const active = filter.values !== null || filter.since || filter.until;
      if (active) this.filters[kind] = filter;
      else delete this.filters[kind];
      form.classList.toggle('wm-filter-active', Boolean(active));
      this.loadKind(kind);
      this.updateState();
    }

    updateFilterStatus(kind) {
      if (kind !== this.filterKind || !this.filterStatus) return;
      const shown = this.counts[kind] || 0;
      this.filterStatus.textContent = this.fmt.number(shown) + ' ' + this.s('features');
    }

    // -- search ---------------------------------------------------------------------------------
    initSearch() {
      const form = document.getElementById('wm-search');
      const input = document.getElementById('wm-search-input');
      const list = document.getElementById('wm-search-results');
      if (!form || !input || !list) return;
      this.searchEls = { form: form, input: input, list: list };
      const typed = debounce(() => this.runSearch(input.value), SEARCH_DEBOUNCE_MS);
      input.addEventListener('input', () => {
        if (input.value.trim().length < 2) { typed.cancel(); this.hideResults(); return; }
        typed();
      });
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        typed.cancel();
        const active = list.querySelector('.wm-hit.wm-active');
        if (active && !list.hidden) { active.click(); return; }
        this.runSearch(input.value, true);
      });
      input.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowDown') { e.preventDefault(); this.moveActive(1); }
        else if (e.key === 'ArrowUp') { e.preventDefault(); this.moveActive(-1); }
        else if (e.key === 'Escape') { this.hideResults(); }
      });
      list.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowDown') { e.preventDefault(); this.moveActive(1, true); }
        else if (e.key === 'ArrowUp') { e.preventDefault(); this.moveActive(-1, true); }
        else if (e.key === 'Escape') { this.hideResults(); input.focus(); }
      });
      document.addEventListener('click', (e) => { if (!form.contains(e.target)) this.hideResults(); });
      input.addEventListener('focus', () => { if (this.search.results.length && input.value.trim() === this.search.query) list.hidden = false; });
    }

    moveActive(step, focus) {
      const hits = Array.from(this.searchEls.list.querySelectorAll('.wm-hit'));
      if (!hits.length || this.searchEls.list.hidden) return;
      let index = hits.findIndex((h) => h.classList.contains('wm-active'));
      index = index < 0 ? (step > 0 ? 0 : hits.length - 1) : (index + step + hits.length) % hits.length;
      hits.forEach((h, i) => h.classList.toggle('wm-active', i === index));
      hits[index].scrollIntoView({ block: 'nearest' });
      if (focus) hits[index].focus();
    }

    hideResults() {
      if (this.searchEls) this.searchEls.list.hidden = true;
    }

    async runSearch(text, submitted) {
      const q = String(text || '').trim();
      const list = this.searchEls.list;
      if (q.length < 2) { this.hideResults(); return; }
      if (q === this.search.query && !submitted && this.search.controller) return;
      if (this.search.controller) this.search.controller.abort();
      const controller = new AbortController();
      this.search.controller = controller;
      this.search.query = q;
      this.searchEls.form.classList.add('wm-searching');
      let body;
      try {
        body = await fetchJSON(this.url(this.api.search, { q: q, limit: 20 }), controller.signal);
      } catch (err) {
        if (isAbort(err)) return;
        body = { results: [], error: err.message };
      } finally {
        if (this.search.controller === controller) {
          this.search.controller = null;
          this.searchEls.form.classList.remove('wm-searching');
        }
      }
      if (this.search.query !== q) return;
      this.search.results = body.results || [];
      list.textContent = '';
      if (!this.search.results.length) {
        list.appendChild(el('li', 'wm-no-hit', body.error ? this.s('error') + ': ' + body.error : this.s('no_results')));
      }
      this.search.results.forEach((hit) => {
        const item = el('li');
        const button = el('button', 'wm-hit');
        button.type = 'button';
        button.setAttribute('data-layer', hit.layer);
        button.appendChild(el('span', 'wm-hit-label', hit.label));
        button.appendChild(el('span', 'wm-hit-layer', hit.layer_label));
        button.addEventListener('click', () => this.chooseHit(hit));
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = false;
      if (submitted && this.search.results.length === 1) this.chooseHit(this.search.results[0]);
    }

    chooseHit(hit) {
      this.hideResults();
      if (this.searchEls) this.searchEls.input.value = hit.label;
      const kind = hit.layer;
      if (this.layers[kind] && !this.map.hasLayer(this.layers[kind])) this.map.addLayer(this.layers[kind]);
      const b = hit.bbox;
      if (b && b.length === 4) {
        this.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: POINT_MAX_ZOOM, padding: [30, 30] });
      }
      this.highlight = { kind: kind, id: hit.id, bbox: b, waiting: true };
      this.drawHighlight();
    }

    drawHighlight() {
      const hl = this.highlight;
      if (!hl) return;
      if (this.highlightLayer) { this.map.removeLayer(this.highlightLayer); this.highlightLayer = null; }
      const feature = (this.data[hl.kind] || []).find((f) => String(f.id) === String(hl.id));
      let geometry = feature ? feature.geometry : null;
      if (feature) hl.waiting = false;
      if (!geometry && hl.bbox) {
        const b = hl.bbox;
        geometry = Math.abs(b[2] - b[0]) < 1e-4 && Math.abs(b[3] - b[1]) < 1e-4
          ? { type: 'Point', coordinates: [b[0], b[1]] }
          : { type: 'Polygon', coordinates: [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]] };
      }
      if (!geometry) return;
      const options = { renderer: this.highlightRenderer, pane: 'wm-highlight', interactive: false };
      this.highlightLayer = L.geoJSON(geometry, {
        style: () => Object.assign({ color: '#00bcd4', weight: 6, opacity: 0.9, fill: false, className: 'wm-flash' }, options),
        pointToLayer: (f, latlng) => L.circleMarker(latlng, Object.assign({
          radius: 16, color: '#00bcd4', weight: 4, fill: false, className: 'wm-flash',
        }, options)),
      }).addTo(this.map);
      clearTimeout(this.highlightTimer);
      const layer = this.highlightLayer;
      this.highlightTimer = setTimeout(() => {
        if (this.highlightLayer === layer) { this.map.removeLayer(layer); this.highlightLayer = null; this.highlight = null; }
      }, HIGHLIGHT_MS);
    }
  }

  window.WebMap = {
    App: App,
    labelPoint: labelPoint,
    start: function (map, config) {
      return new App(map, config);
    },
  };
}(window, document));
