/*
 * priority.js: the planners' page of webmap, /priority (SPDX-License-Identifier: GPL-3.0-or-later).
 *
 * Reads its settings from the JSON block #wm-priority-config, asks /api/priority for the areas with the
 * form's filters, and draws: a choropleth of the priority class, hot and cold spot outlines by confidence
 * (90/95/99 %), the cables and stations of the view from the features API, a legend, the ranked table
 * (sortable; a click on a row zooms to the area) with each score's components, the export links and the
 * method. While the server is still compiling the analysis (503 + Retry-After) it says so and asks again.
 *
 * Text from the data is only ever set with textContent. Nothing is asked of any host but the app.
 * For tests: ``window.priorityApp`` (state, data, loadCount, layers); the map carries data-state
 * "loading" | "warming" | "ready" | "error".
 *
 * Plain ES2017, no build step.
 */
(function (window, document) {
  'use strict';

  const L = window.L;
  const CLASSES = ['very_high', 'high', 'medium', 'low'];
  // ColorBrewer YlOrRd, 4 classes: ordered, readable by the colour-blind and in grey on paper
  const CLASS_COLOURS = { very_high: '#bd0026', high: '#f03b20', medium: '#fd8d3c', low: '#fecc5c' };
  const SPOT_COLOURS = { hot: '#49006a', cold: '#08519c' };
  const SPOT_STYLE = { 99: { weight: 2.6, dashArray: null }, 95: { weight: 1.8, dashArray: null },
    90: { weight: 1.4, dashArray: '4 3' } };
  const FIRST_VIEW_AREAS = 30; // the first view frames the highest-ranked areas, where planners start
  const COMPONENTS = ['score_hotspot', 'score_trend', 'score_risk', 'score_stake'];
  const TABLE_ROWS = 200;
  const MOVE_DEBOUNCE_MS = 250;
  const CHANGE_DEBOUNCE_MS = 700;
  const MAX_RETRY_S = 30;
  const DEFAULT_CELL_M = '500';

  const config = JSON.parse(document.getElementById('wm-priority-config').textContent);
  const S = config.strings;
  const locale = config.lang === 'vi' ? 'vi-VN' : 'en-GB';
  const fmt1 = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const fmt2 = new Intl.NumberFormat(locale, { maximumFractionDigits: 2 });
  const fmtInt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });

  // ---------------------------------------------------------------------------------------------
  // helpers (el, debounce, format, query, labelTable: static/common.js, shared with the other map pages)

  const { el, debounce, format, query, labelTable } = window.WebmapCommon;

  function number(value, formatter) {
    if (value === null || value === undefined || Number.isNaN(value)) return '–';
    return (formatter || fmt1).format(value);
  }

  function trendLabel(trend) {
    return S['priority_trend_' + (trend || 'none')] || trend || '–';
  }

  function spotLabel(props) {
    if (props.hotspot === 'hot' || props.hotspot === 'cold') {
      return format(S['priority_spot_' + props.hotspot], { c: props.confidence });
    }
    return S.priority_spot_none;
  }

  function areaLabel(props) {
    return props.name ? props.name + ' (' + props.area_id + ')' : props.area_id;
  }

  // ---------------------------------------------------------------------------------------------
  // the app

  const App = {
    config: config,
    map: null,
    layers: {},
    data: null,
    features: [],
    byId: {},
    sort: { key: 'rank', dir: 1 },
    loadCount: 0,
    requests: [],
    controller: null,
    retryTimer: null,
    infra: {},
    highlighted: null,
  };
  window.priorityApp = App;

  const mapNode = document.getElementById('wm-priority-map');
  const statusNode = document.getElementById('wm-priority-status');
  const form = document.getElementById('wm-priority-filters');
  App.state = mapNode.getAttribute('data-state');

  function setState(state) {
    mapNode.setAttribute('data-state', state);
    App.state = state;
  }

  function say(text, kind) {
    statusNode.textContent = text;
    statusNode.className = 'wm-priority-status' + (kind ? ' wm-' + kind : '');
  }

  // ---------------------------------------------------------------------------------------------
  // the filters: form <-> query string

  function checked(name) {
    return Array.from(form.querySelectorAll('input[name=' + name + ']'));
  }

  function formParams() {
    const params = {};
    const types = checked('types');
    const chosenTypes = types.filter((b) => b.checked).map((b) => b.value);
    if (chosenTypes.length && chosenTypes.length < types.length) params.types = chosenTypes.join(',');
    const statuses = checked('status');
    const chosen = statuses.filter((b) => b.checked).map((b) => b.value);
    const byDefault = statuses.filter((b) => b.value !== 'rejected').map((b) => b.value);
    if (chosen.length && chosen.join(',') !== byDefault.join(',')) params.status = chosen.join(',');
    ['since', 'until'].forEach((name) => {
      const value = form.elements[name].value;
      if (value) params[name] = value;
    });
    if (form.elements.cell_m.value !== DEFAULT_CELL_M) params.cell_m = form.elements.cell_m.value;
    if (form.elements.shape.value !== 'hex') params.shape = form.elements.shape.value;
    if (form.elements.level.value !== 'cells') params.level = form.elements.level.value;
    return params;
  }

  function resetForm() {
    checked('types').forEach((b) => { b.checked = true; });
    checked('status').forEach((b) => { b.checked = b.value !== 'rejected'; });
    form.elements.since.value = '';
    form.elements.until.value = '';
    form.elements.cell_m.value = DEFAULT_CELL_M;
    form.elements.shape.value = 'hex';
    form.elements.level.value = 'cells';
  }

  function keepInAddressBar(params) {
    const lang = new URLSearchParams(window.location.search).get('lang');
    const text = query(Object.assign({}, params, lang ? { lang: lang } : {}));
    window.history.replaceState(null, '', window.location.pathname + (text ? '?' + text : '') + window.location.hash);
  }

  // A print asks the analysis the table shows (the answer's own echo of its question, not the form,
  // which may have changed since): the same filters and grid, so the printed scores are the page's.
  function printParams(areaId) {
    const asked = (App.data && App.data.metadata && App.data.metadata.query) || {};
    const params = { area: areaId, paper: 'A4' };
    ['types', 'status'].forEach((name) => { if (asked[name] && asked[name].length) params[name] = asked[name].join(','); });
    ['since', 'until'].forEach((name) => { if (asked[name]) params[name] = asked[name]; });
    if (asked.cell_m != null) params.cell_m = String(asked.cell_m);
    if (asked.shape) params.shape = asked.shape;
    return params;
  }

  function updateExports(params) {
    document.querySelectorAll('.wm-priority-export').forEach((link) => {
      const text = query(params);
      link.href = config.api.export.replace('__FMT__', link.getAttribute('data-format')) + (text ? '?' + text : '');
    });
  }

  // ---------------------------------------------------------------------------------------------
  // the map

  function cellStyle(feature) {
    const cls = feature.properties.priority_class;
    const colour = CLASS_COLOURS[cls] || '#cccccc';
    // outlined in their own colour, so that cells of a few pixels (the whole city in view) still read
    return {
      className: 'wm-cell wm-class-' + cls,
      color: colour, weight: 0.6, opacity: 0.9, fillColor: colour, fillOpacity: cls === 'low' ? 0.45 : 0.7,
    };
  }

  function spotStyle(feature) {
    const p = feature.properties;
    const style = SPOT_STYLE[p.confidence] || SPOT_STYLE[90];
    return {
      className: 'wm-spot wm-spot-' + p.hotspot + ' wm-spot-' + p.confidence,
      color: SPOT_COLOURS[p.hotspot], weight: style.weight, dashArray: style.dashArray, fill: false, opacity: 0.95,
    };
  }

  function popupFor(feature) {
    const p = feature.properties;
    const box = el('div', 'wm-priority-popup');
    box.appendChild(el('strong', null, areaLabel(p)));
    const rows = [
      [S.priority_rank, p.rank],
      [S.priority_score, number(p.score)],
      [S.priority_class, S['priority_class_' + p.priority_class] || p.priority_class],
      [S.priority_incidents, number(p.incidents, fmtInt) + ' (' + number(p.recent, fmtInt) + ' / ' + number(p.previous, fmtInt) + ')'],
      [S.priority_trend, trendLabel(p.trend)],
      [S.priority_spot, spotLabel(p)],
    ];
    box.appendChild(labelTable(rows));
    return box;
  }

  function makeMap() {
    const map = L.map(mapNode, { preferCanvas: false, zoomControl: true })
      .setView(config.center, config.zoom);
    map.createPane('wm-cells').style.zIndex = 410;
    map.createPane('wm-spots').style.zIndex = 420;
    map.createPane('wm-infra').style.zIndex = 430;
    if (config.basemap) {
      L.tileLayer(config.basemap.url, { attribution: config.basemap.attribution || '', maxZoom: 19 }).addTo(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
    App.map = map;
    // a drawn rectangle printed with the analysis the table shows (printParams without the area)
    App.printControl = WebmapCommon.printRectangleControl(map, S, { url: config.api.print, params: () => {
      const params = printParams(null);
      delete params.area;
      delete params.paper;
      return params;
    } });
    App.layers.cells = L.geoJSON(null, {
      pane: 'wm-cells',
      style: cellStyle,
      onEachFeature: (feature, layer) => {
        App.byId[feature.id] = layer;
        layer.bindPopup(() => popupFor(feature));
      },
    }).addTo(map);
    // hot and cold spots come merged per confidence class (body.spots): one outline around each cluster
    App.layers.spots = L.geoJSON(null, { pane: 'wm-spots', style: spotStyle, interactive: false }).addTo(map);
    App.layers.districts = L.geoJSON(null, {
      pane: 'wm-infra', interactive: false,
      style: () => ({ className: 'wm-district', color: '#555555', weight: 1.2, fill: false, opacity: 0.8 }),
    }).addTo(map);
    // the infrastructure is drawn thin and see-through: context for the areas, not the subject
    App.layers.cables = L.geoJSON(null, {
      pane: 'wm-infra', interactive: false,
      style: (feature) => ({ className: 'wm-cable', color: '#1d3557', opacity: 0.55,
        weight: feature.properties.tier === 'trunk' ? 1.6 : 0.9 }),
    }).addTo(map);
    App.layers.stations = L.geoJSON(null, {
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
        pane: 'wm-infra', className: 'wm-station', interactive: false,
        radius: ['high', 'critical'].indexOf(feature.properties.criticality) >= 0 ? 3.2 : 2.2,
        color: '#ffffff', weight: 0.8, fillColor: '#1f78b4', fillOpacity: 0.9,
      }),
    }).addTo(map);
    const overlays = {};
    overlays[S.priority_areas_layer] = App.layers.cells;
    overlays[S.priority_spots_legend] = App.layers.spots;
    overlays[S.priority_cables] = App.layers.cables;
    overlays[S.priority_stations] = App.layers.stations;
    overlays[S.priority_districts] = App.layers.districts;
    L.control.layers(null, overlays, { collapsed: true }).addTo(map);
    addLegend(map);
    map.on('moveend', debounce(loadInfrastructure, MOVE_DEBOUNCE_MS));
  }

  function swatch(className, style) {
    const span = el('span', 'wm-swatch ' + className);
    Object.keys(style).forEach((key) => { span.style[key] = style[key]; });
    return span;
  }

  function addLegend(map) {
    const legend = L.control({ position: 'bottomright' });
    legend.onAdd = function () {
      const box = el('div', 'wm-priority-legend leaflet-control');
      box.appendChild(el('h3', null, S.priority_class));
      const classes = el('div', 'wm-legend-classes');
      CLASSES.forEach((cls) => {
        const item = el('span', 'wm-legend-item');
        item.appendChild(swatch('wm-swatch-fill', { background: CLASS_COLOURS[cls] }));
        item.appendChild(el('span', null, S['priority_class_' + cls]));
        classes.appendChild(item);
      });
      box.appendChild(classes);
      box.appendChild(el('h3', null, S.priority_spots_legend));
      // one row per confidence class, a column each for hot and cold
      const grid = el('table', 'wm-legend-spots');
      const head = el('tr');
      head.appendChild(el('th'));
      ['hot', 'cold'].forEach((spot) => head.appendChild(el('th', null, S['priority_legend_' + spot])));
      grid.appendChild(head);
      [99, 95, 90].forEach((c) => {
        const row = el('tr');
        row.appendChild(el('th', null, c + ' %'));
        ['hot', 'cold'].forEach((spot) => {
          const td = el('td');
          const style = SPOT_STYLE[c];
          td.appendChild(swatch('wm-swatch-outline wm-legend-' + spot + '-' + c, {
            borderColor: SPOT_COLOURS[spot], borderWidth: Math.max(1, Math.round(style.weight)) + 'px',
            borderStyle: style.dashArray ? 'dashed' : 'solid',
          }));
          row.appendChild(td);
        });
        grid.appendChild(row);
      });
      box.appendChild(grid);
      const context = el('div', 'wm-legend-classes');
      const cable = el('span', 'wm-legend-item');
      cable.appendChild(swatch('wm-swatch-line', { borderTopColor: '#1d3557' }));
      cable.appendChild(el('span', null, S.priority_cables));
      const station = el('span', 'wm-legend-item');
      station.appendChild(swatch('wm-swatch-dot', { background: '#1f78b4' }));
      station.appendChild(el('span', null, S.priority_stations));
      context.appendChild(cable);
      context.appendChild(station);
      box.appendChild(context);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    legend.addTo(map);
  }

  // cables and stations of the view (padded), from the same features API the map page uses
  async function loadInfrastructure() {
    const bounds = App.map.getBounds().pad(0.2);
    const bbox = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map((v) => v.toFixed(5)).join(',');
    if (App.infra.controller) App.infra.controller.abort();
    const controller = new AbortController();
    App.infra.controller = controller;
    const notes = [];
    await Promise.all([['cable_routes', 'cables'], ['stations', 'stations']].map(async ([kind, name]) => {
      const url = config.api.features.replace('__KIND__', kind) + '?' + query({ bbox: bbox, limit: config.page_features });
      App.requests.push(url);
      try {
        const response = await fetch(url, { credentials: 'same-origin', signal: controller.signal,
          headers: { Accept: 'application/geo+json' } });
        if (!response.ok) return; // a layer not loaded (404): nothing to draw
        const body = await response.json();
        App.layers[name].clearLayers();
        App.layers[name].addData(body);
        if (body.limitExceeded) notes.push(format(S.priority_limit, { kind: S['priority_' + name], n: body.numberReturned }));
      } catch (err) {
        if (err && err.name === 'AbortError') return;
        throw err;
      }
    }));
    App.infra.notes = notes;
    App.infra.loaded = (App.infra.loaded || 0) + 1;
  }

  async function loadDistricts() {
    const url = config.api.features.replace('__KIND__', 'districts');
    App.requests.push(url);
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/geo+json' } });
    if (response.ok) App.layers.districts.addData(await response.json());
  }

  // ---------------------------------------------------------------------------------------------
  // the analysis

  async function load() {
    if (App.retryTimer) { clearTimeout(App.retryTimer); App.retryTimer = null; }
    if (App.controller) App.controller.abort();
    const controller = new AbortController();
    App.controller = controller;
    const params = formParams();
    keepInAddressBar(params);
    updateExports(params);
    const text = query(params);
    const url = config.api.priority + (text ? '?' + text : '');
    App.requests.push(url);
    if (App.state !== 'warming') { setState('loading'); say(S.priority_loading, 'busy'); }
    let response;
    let body = null;
    try {
      response = await fetch(url, { credentials: 'same-origin', signal: controller.signal,
        headers: { Accept: 'application/geo+json, application/json' } });
      body = await response.json().catch(() => null);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      setState('error');
      say(format(S.priority_error, { error: String(err && err.message ? err.message : err) }), 'error');
      return;
    }
    if (controller !== App.controller) return;
    if (response.status === 503) {
      const retry = Math.min(MAX_RETRY_S, Math.max(1, parseInt(response.headers.get('Retry-After'), 10) || config.retry_after_s));
      setState('warming');
      say((body && body.error) || S.priority_warming, 'busy');
      App.retryTimer = setTimeout(load, retry * 1000);
      return;
    }
    if (!response.ok || !body) {
      setState('error');
      say(format(S.priority_error, { error: (body && body.error) || ('HTTP ' + response.status) }), 'error');
      return;
    }
    show(body);
  }

  function show(body) {
    const first = App.data === null;
    App.data = body;
    if (App.printControl) App.printControl.refresh(); // a drawn rectangle prints the analysis now shown
    App.features = body.features;
    App.byId = {};
    App.highlighted = null;
    App.layers.cells.clearLayers();
    App.layers.spots.clearLayers();
    App.layers.cells.addData(body);
    if (body.spots) App.layers.spots.addData(body.spots);
    renderTable();
    renderMethod(body.metadata || {});
    const meta = body.metadata || {};
    const summary = document.getElementById('wm-priority-summary');
    summary.textContent = format(S.priority_summary, {
      shown: number(meta.areas_returned, fmtInt), total: number(meta.areas_total, fmtInt),
      incidents: number(meta.incidents_total, fmtInt),
    });
    say(body.features.length ? '' : S.priority_none, body.features.length ? null : 'empty');
    if (first && body.features.length && !window.location.hash) {
      const top = L.latLngBounds([]);
      body.features.slice().sort((a, b) => a.properties.rank - b.properties.rank).slice(0, FIRST_VIEW_AREAS)
        .forEach((f) => { const layer = App.byId[f.id]; if (layer) top.extend(layer.getBounds()); });
      App.map.fitBounds(top, { padding: [30, 30], maxZoom: 14, animate: false });
    }
    App.loadCount += 1;
    setState('ready');
  }

  // ---------------------------------------------------------------------------------------------
  // the ranked table

  function sortValue(props, key) {
    if (key === 'area') return areaLabel(props);
    if (key === 'trend') return ['emerging', 'persistent', 'fading', 'none'].indexOf(props.trend || 'none');
    return props[key];
  }

  function sorted() {
    const { key, dir } = App.sort;
    const rows = App.features.slice();
    rows.sort((a, b) => {
      const va = sortValue(a.properties, key);
      const vb = sortValue(b.properties, key);
      if (va === vb) return (a.properties.rank || 0) - (b.properties.rank || 0);
      if (va === null || va === undefined) return 1;
      if (vb === null || vb === undefined) return -1;
      if (typeof va === 'string') return dir * va.localeCompare(vb, locale);
      return dir * (va - vb);
    });
    return rows;
  }

  function componentCell(props, key, maxima) {
    const td = el('td', 'wm-num wm-component');
    const value = props[key];
    const bar = el('span', 'wm-component-bar wm-' + key);
    bar.style.width = (maxima[key] > 0 && value > 0 ? Math.max(2, Math.round(100 * value / maxima[key])) : 0) + '%';
    td.appendChild(bar);
    td.appendChild(el('span', 'wm-component-value', number(value)));
    return td;
  }

  function renderTable() {
    const tbody = document.getElementById('wm-priority-rows');
    tbody.textContent = '';
    const maxima = {};
    COMPONENTS.forEach((key) => {
      maxima[key] = App.features.reduce((m, f) => Math.max(m, f.properties[key] || 0), 0);
    });
    const rows = sorted();
    rows.slice(0, TABLE_ROWS).forEach((feature) => {
      const p = feature.properties;
      const tr = el('tr', 'wm-priority-row wm-class-' + p.priority_class);
      tr.setAttribute('data-area', feature.id);
      tr.tabIndex = 0;
      tr.appendChild(el('td', 'wm-num', p.rank));
      const area = el('td', 'wm-area');
      area.appendChild(swatch('wm-swatch-fill', { background: CLASS_COLOURS[p.priority_class] || '#ccc' }));
      area.appendChild(el('span', null, areaLabel(p)));
      tr.appendChild(area);
      tr.appendChild(el('td', 'wm-num wm-score', number(p.score)));
      COMPONENTS.forEach((key) => tr.appendChild(componentCell(p, key, maxima)));
      tr.appendChild(el('td', 'wm-num', number(p.incidents, fmtInt)));
      tr.appendChild(el('td', 'wm-num', number(p.recent, fmtInt) + ' / ' + number(p.previous, fmtInt)));
      tr.appendChild(el('td', 'wm-trend wm-trend-' + (p.trend || 'none'), trendLabel(p.trend)));
      tr.appendChild(el('td', 'wm-spot-cell wm-spot-' + (p.hotspot || 'none'), spotLabel(p)));
      tr.appendChild(el('td', 'wm-num', number(p.key_sites, fmtInt)));
      tr.appendChild(el('td', 'wm-num', number(p.critical_stations, fmtInt)));
      tr.appendChild(el('td', 'wm-num', number(p.trunk_km, fmt2)));
      const printCell = el('td', 'wm-print-cell');
      const link = el('a', 'wm-print', S.priority_print_button);
      link.href = config.api.print + '?' + query(printParams(feature.id));
      link.title = format(S.priority_print_title, { area: feature.id });
      link.target = '_blank';
      link.rel = 'noopener';
      link.addEventListener('click', (event) => event.stopPropagation());
      printCell.appendChild(link);
      tr.appendChild(printCell);
      tr.addEventListener('click', () => zoomTo(feature.id));
      tr.addEventListener('keydown', (event) => { if (event.key === 'Enter') zoomTo(feature.id); });
      tbody.appendChild(tr);
    });
    const more = document.getElementById('wm-priority-more');
    more.hidden = rows.length <= TABLE_ROWS;
    more.textContent = rows.length > TABLE_ROWS ? format(S.priority_more, { n: TABLE_ROWS, total: rows.length }) : '';
    document.querySelectorAll('#wm-priority-table th[data-key]').forEach((th) => {
      const key = th.getAttribute('data-key');
      th.setAttribute('aria-sort', key === App.sort.key ? (App.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
    });
  }

  function zoomTo(areaId) {
    const layer = App.byId[areaId];
    if (!layer) return;
    if (App.highlighted && App.highlighted !== layer) App.layers.cells.resetStyle(App.highlighted);
    layer.setStyle({ color: '#00e5ff', weight: 4, opacity: 1 });
    layer.bringToFront();
    App.highlighted = layer;
    App.map.fitBounds(layer.getBounds(), { maxZoom: 15, padding: [40, 40] });
    document.querySelectorAll('.wm-priority-row.wm-selected').forEach((row) => row.classList.remove('wm-selected'));
    const row = document.querySelector('.wm-priority-row[data-area="' + CSS.escape(areaId) + '"]');
    if (row) row.classList.add('wm-selected');
    App.selected = areaId;
    mapNode.scrollIntoView({ block: 'nearest' });
  }

  function onSort(event) {
    const th = event.target.closest('th[data-key]');
    if (!th) return;
    const key = th.getAttribute('data-key');
    const textual = th.getAttribute('data-type') === 'text';
    if (App.sort.key === key) App.sort.dir = -App.sort.dir;
    else App.sort = { key: key, dir: key === 'rank' || textual ? 1 : -1 };
    renderTable();
  }

  // ---------------------------------------------------------------------------------------------
  // the method, as the analysis wrote it

  function methodText(method) {
    const lang = config.lang;
    const candidates = [
      method.text && method.text[lang], method['text_' + lang], method.description && method.description[lang],
      method.text && method.text.vi, method.text_vi, typeof method.text === 'string' ? method.text : null,
    ];
    return candidates.find((t) => typeof t === 'string' && t) || '';
  }

  function methodName(method) {
    const name = method.name || method.method;
    if (name && typeof name === 'object') return name[config.lang] || name.vi || '';
    return name || '';
  }

  function renderMethod(meta) {
    const box = document.getElementById('wm-priority-method-text');
    box.textContent = '';
    const method = meta.method || {};
    const name = methodName(method);
    if (name) box.appendChild(el('h3', null, name));
    const text = methodText(method);
    if (text) text.split(/\n\s*\n/).forEach((para) => box.appendChild(el('p', null, para)));
    const details = el('details');
    details.appendChild(el('summary', null, S.priority_parameters));
    const list = el('dl', 'wm-priority-params');
    const skip = new Set(['text', 'text_vi', 'text_en', 'name', 'description']);
    Object.keys(method).filter((key) => !skip.has(key)).forEach((key) => {
      list.appendChild(el('dt', null, key));
      const value = method[key];
      list.appendChild(el('dd', null, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)));
    });
    details.appendChild(list);
    box.appendChild(details);
  }

  // ---------------------------------------------------------------------------------------------
  // start

  function start() {
    makeMap();
    form.addEventListener('submit', (event) => { event.preventDefault(); load(); });
    // a few boxes ticked in a row make one request, not one each (every request is an analysis)
    const soon = debounce(load, CHANGE_DEBOUNCE_MS);
    form.addEventListener('change', (event) => {
      // dates are typed digit by digit: wait for the button; everything else applies after a moment
      if (event.target.type !== 'date') soon();
    });
    document.getElementById('wm-priority-reset').addEventListener('click', () => { resetForm(); load(); });
    document.querySelector('#wm-priority-table thead').addEventListener('click', onSort);
    loadDistricts().catch(() => {});
    loadInfrastructure().catch(() => {});
    load();
  }

  start();
})(window, document);
