// Dashboard: the team report (GET /reports/team) for a date range (today, 7 days, 30 days or
// custom) and a group. One row per member (assigned, contacted, average first response,
// replies, activities, open chats) with totals, sortable by any column; counts link to the
// leads or activities they count. A small inline SVG chart draws new leads and the average
// first response per day (one report per day of the range).

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { field, errorLine } from '../settings.js';
import { duration } from './activity.js';

const RANGES = [
  ['today', 'Today', 1],
  ['7d', '7 days', 7],
  ['30d', '30 days', 30],
  ['custom', 'Custom', 0],
];

const COLUMNS = [
  ['name', 'Member', (r) => r.name.toLowerCase()],
  ['assigned', 'Assigned', (r) => r.assigned],
  ['contacted', 'Contacted', (r) => r.contacted],
  ['avg_first_response_secs', 'Avg first response', (r) => (r.avg_first_response_secs === null ? Infinity : r.avg_first_response_secs)],
  ['replies', 'Replies', (r) => r.replies],
  ['activities', 'Activities', (r) => r.activities],
  ['open_conversations', 'Open chats', (r) => r.open_conversations],
];

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Local midnight `days` days from today (0 = today). */
function midnight(days) {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() + days);
  return d;
}

/** yyyy-mm-dd of a local date (for date inputs and links). */
function ymd(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export async function render(root, ctx) {
  const state = { range: '7d', from: ymd(midnight(-6)), to: ymd(midnight(0)), group: '', sort: 'assigned', desc: true, report: null, token: 0, destroyed: false };

  const rangeButtons = RANGES.map(([key, title]) => {
    const b = h('button', { type: 'button', role: 'tab', class: 'tab', id: `dash-range-${key}`, 'aria-selected': String(key === state.range) }, title);
    b.addEventListener('click', () => setRange(key));
    return b;
  });
  const from = h('input', { type: 'date', id: 'dash-from', value: state.from });
  const to = h('input', { type: 'date', id: 'dash-to', value: state.to });
  const custom = h('div', { class: 'tool-row', hidden: true }, field('From', from), field('To (inclusive)', to));
  const group = h('select', { id: 'dash-group' }, h('option', { value: '' }, 'All leads'));
  const heading = h('p', { class: 'muted', id: 'dash-range-text', role: 'status', 'aria-live': 'polite' });
  const error = errorLine('dash-error');
  const thead = h('thead', {});
  const tbody = h('tbody', {});
  const tfoot = h('tfoot', {});
  const table = h('table', { class: 'data-table', id: 'dash-table', 'aria-label': 'Team report' }, thead, tbody, tfoot);
  const chart = h('figure', { class: 'dash-figure', id: 'dash-chart' });
  // Messages Meta charges for, per pricing category (from the statuses' pricing).
  const billable = h('section', { class: 'dash-billable', id: 'dash-billable', 'aria-labelledby': 'dash-billable-title' });

  replace(
    root,
    h(
      'div',
      { class: 'settings-scroll' },
      h(
        'section',
        { class: 'settings wide-page', 'aria-labelledby': 'dash-title' },
        h('h1', { id: 'dash-title' }, 'Dashboard'),
        h('div', { class: 'tool-row settings-tools' }, h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Date range' }, rangeButtons), field('Group', group)),
        custom,
        heading,
        error,
        table,
        billable,
        chart,
      ),
    ),
  );

  for (const el of [from, to]) {
    el.addEventListener('change', () => {
      state.from = from.value;
      state.to = to.value;
      load();
    });
  }
  group.addEventListener('change', () => {
    state.group = group.value;
    load();
  });

  function setRange(key) {
    state.range = key;
    for (const [i, b] of rangeButtons.entries()) b.setAttribute('aria-selected', String(RANGES[i][0] === key));
    custom.hidden = key !== 'custom';
    const days = (RANGES.find((r) => r[0] === key) || [])[2];
    if (days) {
      state.from = ymd(midnight(1 - days));
      state.to = ymd(midnight(0));
      from.value = state.from;
      to.value = state.to;
    }
    load();
  }

  /** [from, to) as Date objects: local midnights, `to` the day after the last day shown. */
  function bounds() {
    const f = new Date(`${state.from}T00:00:00`);
    const t = new Date(`${state.to}T00:00:00`);
    t.setDate(t.getDate() + 1);
    return [f, t];
  }

  async function load() {
    const token = ++state.token;
    const [f, t] = bounds();
    if (!(f < t)) {
      error.textContent = 'The range must end on or after the day it starts.';
      return;
    }
    error.textContent = '';
    table.setAttribute('aria-busy', 'true');
    heading.textContent = `${f.toLocaleDateString()} – ${new Date(t.getTime() - 1).toLocaleDateString()}`;
    try {
      const report = await api.get('/reports/team', { from: f.toISOString(), to: t.toISOString(), group_id: state.group });
      if (token !== state.token || state.destroyed) return;
      state.report = report;
      renderTable();
      renderBillable();
    } catch (e) {
      if (token === state.token) error.textContent = e.message;
    } finally {
      if (token === state.token) table.setAttribute('aria-busy', 'false');
    }
    drawChart(token, f, t);
  }

  function link(href, value, label) {
    return h('a', { href, 'aria-label': label }, String(value));
  }

  function renderTable() {
    const r = state.report;
    replace(
      thead,
      h(
        'tr',
        {},
        COLUMNS.map(([key, title]) => {
          const sorted = state.sort === key;
          const b = h('button', { type: 'button', class: 'sort' }, title, sorted ? (state.desc ? ' ↓' : ' ↑') : '');
          b.addEventListener('click', () => {
            if (state.sort === key) state.desc = !state.desc;
            else {
              state.sort = key;
              state.desc = key !== 'name';
            }
            renderTable();
          });
          return h('th', { scope: 'col', class: key === 'name' ? null : 'num', 'aria-sort': sorted ? (state.desc ? 'descending' : 'ascending') : 'none' }, b);
        }),
      ),
    );
    const get = COLUMNS.find((c) => c[0] === state.sort)[2];
    const rows = [...r.members].sort((a, b) => {
      const x = get(a);
      const y = get(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return state.desc ? -c : c;
    });
    const groupQ = state.group ? `&group_id=${state.group}` : '';
    const dates = `from=${state.from}&to=${state.to}`;
    replace(
      tbody,
      rows.map((m) =>
        h(
          'tr',
          { dataset: { member: m.member_id } },
          h('th', { scope: 'row' }, m.name),
          h('td', { class: 'num' }, link(`#/leads?assignee_id=${m.member_id}${groupQ}`, m.assigned, `${m.assigned} leads assigned to ${m.name}`)),
          h('td', { class: 'num' }, link(`#/leads?assignee_id=${m.member_id}&contacted=true${groupQ}`, m.contacted, `${m.contacted} leads of ${m.name} contacted`)),
          h('td', { class: 'num' }, duration(m.avg_first_response_secs)),
          h('td', { class: 'num' }, m.replies),
          h('td', { class: 'num' }, link(`#/activity?member_id=${m.member_id}&${dates}`, m.activities, `${m.activities} activities of ${m.name}`)),
          h('td', { class: 'num' }, m.open_conversations),
        ),
      ),
    );
    const t = r.totals;
    replace(
      tfoot,
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, 'Total'),
        h('td', { class: 'num' }, t.assigned),
        h('td', { class: 'num' }, t.contacted),
        h('td', { class: 'num' }, duration(t.avg_first_response_secs)),
        h('td', { class: 'num' }, t.replies),
        h('td', { class: 'num' }, link(`#/activity?${dates}`, t.activities, `${t.activities} activities in all`)),
        h('td', { class: 'num' }, t.open_conversations),
      ),
    );
  }

  function renderBillable() {
    const list = (state.report && state.report.billable) || [];
    const total = list.reduce((n, b) => n + b.messages, 0);
    const name = (c) => (c ? c.charAt(0).toUpperCase() + c.slice(1).replace(/[_-]/g, ' ') : c);
    replace(
      billable,
      h('h2', { id: 'dash-billable-title' }, 'Billable messages'),
      list.length
        ? h(
            'table',
            { class: 'data-table', 'aria-label': 'Billable messages by pricing category' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Pricing category'), h('th', { scope: 'col', class: 'num' }, 'Messages'))),
            h('tbody', {}, list.map((b) => h('tr', { dataset: { category: b.category } }, h('th', { scope: 'row' }, name(b.category)), h('td', { class: 'num' }, b.messages)))),
            h('tfoot', {}, h('tr', {}, h('th', { scope: 'row' }, 'Total'), h('td', { class: 'num' }, total))),
          )
        : h('p', { class: 'muted' }, 'No billable messages in this range.'),
    );
  }

  /** One report per day of [f, t) (at most 31), six at a time, then the chart. */
  async function drawChart(token, f, t) {
    const days = [];
    for (let d = new Date(f); d < t && days.length < 31; d.setDate(d.getDate() + 1)) days.push(new Date(d));
    const points = new Array(days.length);
    let next = 0;
    const worker = async () => {
      while (next < days.length) {
        const i = next++;
        const end = new Date(days[i]);
        end.setDate(end.getDate() + 1);
        try {
          const r = await api.get('/reports/team', { from: days[i].toISOString(), to: end.toISOString(), group_id: state.group });
          points[i] = { day: days[i], leads: r.totals.assigned, frs: r.totals.avg_first_response_secs };
        } catch {
          points[i] = { day: days[i], leads: 0, frs: null };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(6, days.length) }, worker));
    if (token !== state.token || state.destroyed) return;
    const W = 640;
    const H = 200;
    const pad = { l: 32, r: 40, t: 12, b: 24 };
    const maxLeads = Math.max(1, ...points.map((p) => p.leads));
    const maxFrs = Math.max(1, ...points.map((p) => p.frs || 0));
    const step = (W - pad.l - pad.r) / points.length;
    const y = (v, max) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
    const bars = points.map((p, i) =>
      s('rect', { class: 'bar', x: (pad.l + i * step + step * 0.15).toFixed(1), y: y(p.leads, maxLeads).toFixed(1), width: (step * 0.7).toFixed(1), height: (H - pad.b - y(p.leads, maxLeads)).toFixed(1) }, s('title', {}, `${p.day.toLocaleDateString()}: ${p.leads} new leads, first response ${duration(p.frs)}`)),
    );
    const withFrs = points.map((p, i) => [p, i]).filter(([p]) => p.frs !== null);
    const line = withFrs.map(([p, i]) => `${(pad.l + (i + 0.5) * step).toFixed(1)},${y(p.frs, maxFrs).toFixed(1)}`).join(' ');
    const every = Math.ceil(points.length / 8);
    const labels = points.map((p, i) => (i % every === 0 ? s('text', { x: (pad.l + (i + 0.5) * step).toFixed(1), y: H - 6, 'text-anchor': 'middle' }, `${p.day.getDate()}/${p.day.getMonth() + 1}`) : null)).filter(Boolean);
    const svg = s(
      'svg',
      { class: 'dash-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'dash-chart-title' },
      s('title', { id: 'dash-chart-title' }, `New leads per day (bars, up to ${maxLeads}) and average first response (line, up to ${duration(maxFrs)})`),
      s('text', { x: 4, y: pad.t + 8 }, String(maxLeads)),
      s('text', { x: W - 4, y: pad.t + 8, 'text-anchor': 'end' }, duration(maxFrs)),
      ...bars,
      line ? s('polyline', { class: 'line', points: line }) : s('g'),
      ...withFrs.map(([p, i]) => s('circle', { class: 'dot', cx: (pad.l + (i + 0.5) * step).toFixed(1), cy: y(p.frs, maxFrs).toFixed(1), r: 3 })),
      ...labels,
    );
    replace(chart, svg, h('figcaption', { class: 'muted small' }, 'Bars: new leads per day (by the day they arrived). Line: average first response.'));
  }

  try {
    for (const g of (await api.get('/groups')).groups) group.append(h('option', { value: g.id }, g.name));
  } catch {
    /* all leads only */
  }
  setRange(state.range);
  return {
    destroy() {
      state.destroyed = true;
    },
  };
}
