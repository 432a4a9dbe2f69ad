/*
 * exposure.js: the map of the exposure page (SPDX-License-Identifier: GPL-3.0-or-later).
 *
 * Reads its configuration from the JSON block #wm-exposure-config (no inline script: the CSP forbids
 * them), loads the GeoJSON of /api/exposure (segments, stations, counted incidents) and the public
 * district boundaries, and draws the network coloured by exposure class. Text from the data is only ever
 * set with textContent. Hooks for tests: ``window.exposureApp`` (counts, map) and the map container's
 * ``data-state`` ("loading", "ready" or "error").
 *
 * Plain ES2017, no build step; Leaflet comes from the app's own /vendor files.
 */
(function (window, document) {
  'use strict';

  const L = window.L;
  // ColorBrewer YlOrRd and a grey for "none": the same colours as the PDF (webmap/maps/exposure_pdf.py).
  const COLOURS = { none: '#b0b4b9', low: '#fecc5c', medium: '#fd8d3c', high: '#e31a1c', very_high: '#800026' };
  const CLASSES = ['none', 'low', 'medium', 'high', 'very_high'];
  const WIDTHS = { none: 1.5, low: 3, medium: 3.5, high: 4.5, very_high: 5.5 };

  // el, labelTable: static/common.js, shared with the other map pages
  const { el, labelTable } = window.WebmapCommon;

  function number(value, decimals, lang) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return '–';
    return Number(value).toLocaleString(lang === 'vi' ? 'vi-VN' : 'en-GB',
      { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  }

  function popup(rows) {
    const box = el('div', 'wm-exp-popup');
    box.appendChild(labelTable(rows.filter(([, value]) => value !== null && value !== undefined && value !== '')));
    return box;
  }

  function App(config) {
    this.config = config;
    this.t = config.strings;
    this.lang = config.lang;
    this.counts = { segments: 0, stations: 0, incidents: 0 };
    this.byId = {};
    this.container = document.getElementById('wm-exposure-map');
    this.status = document.getElementById('wm-exposure-status');
    this.map = L.map(this.container, { zoomControl: true, preferCanvas: false });
    this.map.attributionControl.setPrefix(false);
    L.control.scale({ imperial: false }).addTo(this.map);
    this.map.setView([10.06, 105.62], 10);
    this.groups = {
      districts: L.layerGroup().addTo(this.map),
      segments: L.featureGroup().addTo(this.map),
      stations: L.featureGroup().addTo(this.map),
      incidents: L.featureGroup().addTo(this.map),
    };
    this.legend();
  }

  App.prototype.className = function (cls) {
    return this.t['exposure_class_' + cls] || cls;
  };

  App.prototype.legend = function () {
    const control = L.control({ position: 'bottomright' });
    control.onAdd = () => {
      const box = el('div', 'wm-exp-legend leaflet-bar');
      box.appendChild(el('strong', null, this.t.exposure_legend));
      CLASSES.slice().reverse().forEach((cls) => {
        const row = el('div', 'wm-exp-legend-row');
        const swatch = el('span', 'wm-exp-swatch');
        swatch.style.background = COLOURS[cls];
        row.appendChild(swatch);
        row.appendChild(el('span', null, this.className(cls)));
        box.appendChild(row);
      });
      const row = el('div', 'wm-exp-legend-row');
      row.appendChild(el('span', 'wm-exp-swatch wm-exp-swatch-incident'));
      row.appendChild(el('span', null, this.t.exposure_map_incidents));
      box.appendChild(row);
      return box;
    };
    control.addTo(this.map);
  };

  App.prototype.load = function () {
    const districts = fetch(this.config.districts, { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : { features: [] }))
      .then((data) => this.drawDistricts(data))
      .catch(() => null);
    const exposure = fetch(this.config.api, { credentials: 'same-origin' })
      .then((r) => { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then((data) => this.draw(data));
    return Promise.all([districts, exposure]).then(() => {
      this.fit();
      this.status.textContent = '';
      this.status.hidden = true;
      this.container.setAttribute('data-state', 'ready');
    }).catch((err) => {
      this.status.textContent = this.t.exposure_load_error + ' (' + err.message + ')';
      this.container.setAttribute('data-state', 'error');
    });
  };

  App.prototype.drawDistricts = function (data) {
    L.geoJSON(data, {
      interactive: false,
      style: { color: '#7d8893', weight: 1, fill: false },
    }).addTo(this.groups.districts);
  };

  App.prototype.draw = function (data) {
    const t = this.t;
    const lang = this.lang;
    const features = data.features || [];
    const segments = features.filter((f) => f.properties.layer === 'segment');
    const stations = features.filter((f) => f.properties.layer === 'station');
    const incidents = features.filter((f) => f.properties.layer === 'incident');
    // the least exposed underneath, so the worst segments stay visible where routes share a street
    segments.sort((a, b) => CLASSES.indexOf(a.properties.exposure_class) - CLASSES.indexOf(b.properties.exposure_class));
    L.geoJSON({ type: 'FeatureCollection', features: segments }, {
      style: (f) => ({
        color: COLOURS[f.properties.exposure_class] || COLOURS.none,
        weight: WIDTHS[f.properties.exposure_class] || 2,
        opacity: 0.95,
        className: 'wm-exp-segment wm-exp-' + f.properties.exposure_class,
      }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindPopup(() => popup([
          [t.exposure_segment, p.segment_id],
          [t.exposure_route, p.route_name],
          [t.exposure_km, number(p.chainage_from_m / 1000, 2, lang) + '–' + number(p.chainage_to_m / 1000, 2, lang)],
          [t.exposure_count, p.incidents],
          [t.exposure_index, number(p.exposure, 2, lang)],
          [t.exposure_class, this.className(p.exposure_class)],
          [t.exposure_repeat_short, p.repeat_damage ? '✓' : ''],
          [t.exposure_trend, (t['exposure_trend_' + p.trend] || p.trend) + ' (' + p.recent + '/' + p.previous + ')'],
        ]));
        this.byId[p.segment_id] = layer;
      },
    }).eachLayer((layer) => layer.addTo(this.groups.segments));
    L.geoJSON({ type: 'FeatureCollection', features: stations }, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {
        radius: f.properties.exposure_class === 'none' ? 4 : 7,
        color: '#1f2328', weight: 1, fillColor: COLOURS[f.properties.exposure_class] || COLOURS.none,
        fillOpacity: 0.95, className: 'wm-exp-station wm-exp-' + f.properties.exposure_class,
      }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindPopup(() => popup([
          [t.exposure_station, p.station_id],
          ['', p.station_name],
          [t.exposure_count, p.incidents],
          [t.exposure_index, number(p.exposure, 2, lang)],
          [t.exposure_class, this.className(p.exposure_class)],
          [t.exposure_repeat_short, p.repeat_damage ? '✓' : ''],
          [t.exposure_trend, (t['exposure_trend_' + p.trend] || p.trend) + ' (' + p.recent + '/' + p.previous + ')'],
        ]));
        this.byId[p.station_id] = layer;
      },
    }).eachLayer((layer) => layer.addTo(this.groups.stations));
    L.geoJSON({ type: 'FeatureCollection', features: incidents }, {
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {
        radius: 3, color: '#1f2328', weight: 1, fillColor: '#ffffff', fillOpacity: 1, className: 'wm-exp-incident',
      }),
      onEachFeature: (f, layer) => {
        const p = f.properties;
        layer.bindPopup(() => popup([
          [t.exposure_map_incidents, p.id],
          ['', String(p.occurred_at || '').replace('T', ' ').slice(0, 16)],
          ['', p.type + ' · ' + p.severity],
          [t.exposure_distance, number(p.distance_m, 0, lang) + ' → ' + p.asset_id],
          [t.exposure_km, p.chainage_m === null ? '' : number(p.chainage_m / 1000, 2, lang)],
          [t.exposure_weight, number(p.weight, 2, lang)],
        ]));
      },
    }).eachLayer((layer) => layer.addTo(this.groups.incidents));
    this.groups.segments.bringToFront();
    this.counts = { segments: segments.length, stations: stations.length, incidents: incidents.length };
    L.control.layers(null, {
      [t.exposure_segments]: this.groups.segments,
      [t.exposure_stations]: this.groups.stations,
      [t.exposure_map_incidents]: this.groups.incidents,
    }, { collapsed: false, position: 'topright' }).addTo(this.map);
  };

  App.prototype.fit = function () {
    const bounds = L.latLngBounds([]);
    ['segments', 'stations'].forEach((name) => {
      if (this.groups[name].getLayers().length) bounds.extend(this.groups[name].getBounds());
    });
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [16, 16] });
  };

  App.prototype.focus = function (id) {
    const layer = this.byId[id];
    if (!layer) return;
    this.container.scrollIntoView({ block: 'nearest' });
    // no animation: a popup opened during a zoom animation would cut it short
    if (layer.getBounds) this.map.fitBounds(layer.getBounds(), { maxZoom: 16, padding: [40, 40], animate: false });
    else this.map.setView(layer.getLatLng(), 16, { animate: false });
    layer.openPopup();
  };

  function start() {
    const node = document.getElementById('wm-exposure-config');
    if (!node || !L) return;
    const app = new App(JSON.parse(node.textContent));
    window.exposureApp = app;
    document.querySelectorAll('.wm-exposure-ranked tbody tr[data-id]').forEach((row) => {
      row.addEventListener('click', () => app.focus(row.getAttribute('data-id')));
    });
    app.load();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}(window, document));
