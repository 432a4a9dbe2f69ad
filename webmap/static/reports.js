/* webmap: the incident report form (SPDX-License-Identifier: GPL-3.0-or-later).
 *
 * Shows the chosen way of giving the location (map, chainage, coordinates) and hides the others; on a small
 * Leaflet map (served by the app itself) the user clicks where it happened: the longitude and latitude are
 * filled in, and for an enterprise its nearest cable route or station (its own network is drawn, from the
 * same access-checked API as the main map). The form is posted as an ordinary form, so it works without
 * this script too. The map element's data-state is "ready" once its layers are drawn (for the tests).
 */
(function () {
  'use strict';

  const form = document.getElementById('wm-report-form');
  const mapEl = document.getElementById('wm-report-map');
  if (!form || !mapEl) return;
  document.documentElement.classList.add('wm-js');
  const config = JSON.parse(mapEl.getAttribute('data-config') || '{}');
  const strings = config.strings || {};
  const $ = (id) => document.getElementById(id);
  const lonInput = $('wm-report-lon');
  const latInput = $('wm-report-lat');
  const assetInput = $('wm-report-asset');
  const nearestText = $('wm-report-nearest');
  const timeInput = $('wm-report-time');
  const state = { map: null, marker: null, assets: [], autoAsset: null, loaded: 0 };
  window.webmapReport = state;

  function format(template, values) {
    return String(template || '').replace(/\{(\w+)\}/g, (_, key) => (key in values ? values[key] : ''));
  }

  // -- which way of giving the location ---------------------------------------------------------------
  function chosenMethod() {
    const chosen = form.querySelector('input[name=method]:checked');
    return chosen ? chosen.value : 'map';
  }

  function showMethod() {
    const method = chosenMethod();
    form.querySelectorAll('.wm-method').forEach((section) => {
      section.hidden = section.getAttribute('data-method') !== method;
    });
    if (method === 'map' && state.map) state.map.invalidateSize();
  }

  form.querySelectorAll('input[name=method]').forEach((radio) => radio.addEventListener('change', showMethod));
  showMethod();

  // -- the time: Vietnam time, not in the future ------------------------------------------------------
  if (timeInput) {
    const vietnamNow = new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 16);
    timeInput.max = vietnamNow;
    if (!timeInput.value) timeInput.value = vietnamNow;
  }

  // -- the map ------------------------------------------------------------------------------------------
  if (typeof L === 'undefined') return;
  const map = L.map(mapEl, { center: config.center || [10.03, 105.77], zoom: config.zoom || 11, zoomControl: true });
  state.map = map;
  if (config.basemap && config.basemap.url) {
    L.tileLayer(config.basemap.url, { attribution: config.basemap.attribution || '', maxZoom: 19 }).addTo(map);
  }
  L.control.scale({ imperial: false }).addTo(map);
  mapEl.setAttribute('data-state', 'loading');

  function featuresUrl(kind) {
    return config.features.replace('__KIND__', encodeURIComponent(kind)) + '?limit=5000';
  }

  async function load(kind, style) {
    const response = await fetch(featuresUrl(kind), { headers: { Accept: 'application/geo+json' } });
    if (!response.ok) return null;
    const collection = await response.json();
    const layer = L.geoJSON(collection, {
      interactive: false,
      style: () => style,
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, Object.assign({ radius: 3.5, interactive: false }, style)),
    }).addTo(map);
    return layer;
  }

  async function loadAll() {
    const jobs = (config.context_kinds || []).map((kind) => load(kind, {
      color: '#6b7480', weight: 1, fill: true, fillColor: '#dfe4ea', fillOpacity: 0.25,
    }));
    const assetJobs = (config.asset_kinds || []).map((kind) => load(kind, {
      color: kind === 'cable_routes' ? '#0b5cad' : '#073b70', weight: kind === 'cable_routes' ? 3 : 1,
      fillColor: '#ffffff', fillOpacity: 1,
    }).then((layer) => {
      if (layer) state.assets.push(layer);
      return layer;
    }));
    await Promise.all(jobs.concat(assetJobs));
    const bounds = L.latLngBounds([]);
    state.assets.forEach((layer) => {
      const b = layer.getBounds();
      if (b.isValid()) bounds.extend(b);
    });
    if (bounds.isValid() && !state.marker) map.fitBounds(bounds, { padding: [16, 16], maxZoom: 16 });
    state.loaded += 1;
    mapEl.setAttribute('data-state', 'ready');
  }

  // -- picking a place ----------------------------------------------------------------------------------
  // Projected at a fixed deep zoom, unrounded (latLngToLayerPoint rounds to the screen's pixels).
  const DEEP_ZOOM = 22;
  const project = (ll) => map.project(ll, DEEP_ZOOM);

  function nearestAsset(latlng) {
    const here = project(latlng);
    let best = null;
    state.assets.forEach((group) => group.eachLayer((layer) => {
      const feature = layer.feature || {};
      let candidate = null;
      if (layer.getLatLng) {
        candidate = layer.getLatLng();
      } else if (layer.getLatLngs) {
        let lines = layer.getLatLngs();
        if (!Array.isArray(lines[0])) lines = [lines];
        lines.forEach((line) => {
          for (let i = 0; i + 1 < line.length; i += 1) {
            const foot = map.unproject(L.LineUtil.closestPointOnSegment(here, project(line[i]), project(line[i + 1])),
              DEEP_ZOOM);
            if (!candidate || map.distance(latlng, foot) < map.distance(latlng, candidate)) candidate = foot;
          }
        });
      }
      if (!candidate) return;
      const metres = map.distance(latlng, candidate);
      if (!best || metres < best.metres) best = { metres: metres, feature: feature };
    }));
    return best;
  }

  function place(latlng, fromMap) {
    if (!state.marker) {
      const icon = L.divIcon({ className: 'wm-report-marker', iconSize: [16, 16], iconAnchor: [8, 8] });
      state.marker = L.marker(latlng, { icon: icon, keyboard: false, interactive: false }).addTo(map);
    } else {
      state.marker.setLatLng(latlng);
    }
    if (!fromMap) return;
    lonInput.value = latlng.lng.toFixed(6);
    latInput.value = latlng.lat.toFixed(6);
    const mapRadio = $('wm-method-map');
    if (mapRadio && !mapRadio.checked) {
      mapRadio.checked = true;
      showMethod();
    }
    const best = nearestAsset(latlng);
    if (best && best.feature.id !== undefined && best.feature.id !== null) {
      const props = best.feature.properties || {};
      const label = props.name ? best.feature.id + ' – ' + props.name : String(best.feature.id);
      nearestText.textContent = format(strings.report_nearest, { asset: label, m: Math.round(best.metres) });
      if (assetInput && (!assetInput.value || assetInput.value === state.autoAsset)) {
        assetInput.value = String(best.feature.id);
        state.autoAsset = assetInput.value;
      }
    } else {
      nearestText.textContent = format(strings.report_picked, { lon: lonInput.value, lat: latInput.value });
    }
  }

  state.nearestAsset = nearestAsset;
  map.on('click', (event) => place(event.latlng, true));

  function fromInputs() {
    const lon = parseFloat(String(lonInput.value).replace(',', '.'));
    const lat = parseFloat(String(latInput.value).replace(',', '.'));
    if (Number.isFinite(lon) && Number.isFinite(lat) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
      place(L.latLng(lat, lon), false);
      return true;
    }
    return false;
  }
  [lonInput, latInput].forEach((input) => input.addEventListener('change', fromInputs));
  if (fromInputs()) map.setView(state.marker.getLatLng(), Math.max(map.getZoom(), 15));

  loadAll().catch(() => mapEl.setAttribute('data-state', 'ready'));
}());
