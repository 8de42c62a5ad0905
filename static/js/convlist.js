// A live conversation list: fetched with the contract's filters, kept current from websocket
// events (new chats appear, activity reorders, unread badges move), paged with next_cursor.

import { api } from './api.js';
import { h, avatar } from './dom.js';
import { when, full, phone } from './format.js';

const TYPE_LABEL = {
  image: '📷 Photo', video: '🎬 Video', audio: '🎤 Audio', document: '📄 Document', sticker: 'Sticker',
  location: '📍 Location', contacts: '👤 Contact', interactive: 'Reply', button: 'Reply', order: '🛒 Order',
  template: 'Template', reaction: 'Reaction', system: 'Notice', unsupported: 'Unsupported message',
};

/** The list line of a last message: who sent it (you, a teammate, the WhatsApp app), then what. */
export function previewText(m, ctx) {
  if (!m) return 'No messages yet';
  const body = m.text || TYPE_LABEL[m.type] || m.type || '';
  if (m.direction !== 'out') return body;
  const by = m.sent_by;
  if (by === 'whatsapp_app') return `WhatsApp app: ${body}`;
  if (by && typeof by === 'object') {
    if (ctx && by.id === ctx.me.id) return `You: ${body}`;
    const name = (ctx && ctx.members.get(by.id)?.name) || by.name || by.email;
    return name ? `${name}: ${body}` : body;
  }
  return body;
}

/** When a conversation last had a message: what orders the list and the time it shows. */
export function lastMessageAt(c) {
  return c.last_message_at || (c.last_message && c.last_message.created_at) || c.updated_at;
}

const byActivity = (a, b) => {
  const x = lastMessageAt(a);
  const y = lastMessageAt(b);
  return x < y ? 1 : x > y ? -1 : a.id < b.id ? 1 : -1;
};

export class ConvList {
  /**
   * @param ctx the app context
   * @param opts.filter() the current filter: {assignee_id, unassigned, label_id, q, status}
   * @param opts.href(id) the link of a conversation
   * @param opts.label the list's accessible name
   */
  constructor(ctx, opts) {
    this.ctx = ctx;
    this.opts = opts;
    this.items = new Map();
    this.els = new Map();
    this.selected = null;
    this.next = null;
    this.loading = false;
    this.generation = 0;
    this.ul = h('ul', { class: 'conv-list', 'aria-label': opts.label || 'Conversations' });
    this.more = h('button', { type: 'button', class: 'btn ghost wide load-more', hidden: true }, 'Load more');
    this.more.addEventListener('click', () => this.loadMore());
    this.empty = h('p', { class: 'empty muted', hidden: true }, 'No conversations here.');
    this.error = h('p', { class: 'form-error', role: 'alert' });
    this.el = h('div', { class: 'conv-scroll' }, this.error, this.ul, this.empty, this.more);
  }

  params() {
    const f = this.opts.filter();
    const p = {};
    for (const k of ['assignee_id', 'label_id', 'q', 'status']) if (f[k]) p[k] = f[k];
    if (f.unassigned) p.unassigned = 'true';
    return p;
  }

  matches(c) {
    const f = this.opts.filter();
    if (f.assignee_id && c.assignee_id !== f.assignee_id) return false;
    if (f.unassigned && c.assignee_id) return false;
    if (f.hide_unassigned && !c.assignee_id) return false;
    if (f.hide_others && c.assignee_id && c.assignee_id !== this.ctx.me.id) return false;
    if (f.status && c.status !== f.status) return false;
    if (f.label_id && !(c.label_ids || []).includes(f.label_id)) return false;
    if (f.q) {
      const q = f.q.trim().toLowerCase();
      const digits = q.replace(/[^0-9]/g, '');
      const phoneLike = /^[0-9 +\-().]+$/.test(q) && digits.length >= 3;
      const nameHit = (c.lead_name || '').toLowerCase().includes(q);
      const phoneHit = phoneLike && (c.contact_phone || '').includes(digits);
      if (!nameHit && !phoneHit) return false;
    }
    return true;
  }

  async load() {
    const gen = ++this.generation;
    this.loading = true;
    this.error.textContent = '';
    try {
      const page = await api.get('/conversations', { ...this.params(), limit: 50 });
      if (gen !== this.generation) return;
      this.items = new Map(page.conversations.map((c) => [c.id, c]));
      this.next = page.next_cursor;
    } catch (e) {
      if (gen !== this.generation) return;
      this.error.textContent = e.message;
    } finally {
      if (gen === this.generation) this.loading = false;
    }
    this.render();
  }

  async loadMore() {
    if (!this.next || this.loading) return;
    const gen = this.generation;
    this.loading = true;
    this.more.disabled = true;
    try {
      const page = await api.get('/conversations', { ...this.params(), limit: 50, cursor: this.next });
      if (gen !== this.generation) return;
      for (const c of page.conversations) this.items.set(c.id, c);
      this.next = page.next_cursor;
    } catch (e) {
      this.error.textContent = e.message;
    } finally {
      this.loading = false;
      this.more.disabled = false;
    }
    this.render();
  }

  /** A conversation as an event carries it: insert, move or drop it. */
  upsert(c) {
    if (!c || !c.id) return;
    const had = this.items.has(c.id);
    if (!this.matches(c)) {
      if (had) {
        this.items.delete(c.id);
        this.render();
      }
      return;
    }
    // Beyond the last loaded page? It will come with "Load more".
    if (!had && this.next) {
      const sorted = this.sorted();
      const last = sorted[sorted.length - 1];
      if (last && byActivity(c, last) > 0) return;
    }
    const prev = this.items.get(c.id);
    this.items.set(c.id, prev ? { ...prev, ...c } : c);
    this.render();
  }

  get(id) {
    return this.items.get(id);
  }

  /** Drops a conversation the caller can no longer see. */
  remove(id) {
    if (this.items.delete(id)) this.render();
  }

  /**
   * Whether a listed conversation could vanish without an event reaching us: one we see only
   * because it is unassigned, when someone else claims it, or one we just gave away.
   */
  atRisk(c) {
    const ctx = this.ctx;
    if (ctx.isAdmin || ctx.perms.view_others_leads) return false;
    return c.assignee_id !== ctx.me.id;
  }

  sorted() {
    return [...this.items.values()].sort(byActivity);
  }

  select(id) {
    this.selected = id;
    for (const [cid, el] of this.els) {
      const a = el.firstChild;
      if (cid === id) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
  }

  /** The id `step` places from the selected one (j/k). */
  neighbour(step) {
    const ids = this.sorted().map((c) => c.id);
    if (!ids.length) return null;
    const i = ids.indexOf(this.selected);
    if (i < 0) return ids[step > 0 ? 0 : ids.length - 1];
    return ids[Math.max(0, Math.min(ids.length - 1, i + step))];
  }

  itemEl(c) {
    const at = lastMessageAt(c);
    const sig = JSON.stringify([at, c.unread_count, c.assignee_id, c.status, c.label_ids, c.last_message, c.lead_name, this.ctx.memberName(c.assignee_id), (c.label_ids || []).map((id) => this.ctx.labels.get(id)?.name)]);
    const cached = this.els.get(c.id);
    if (cached && cached.dataset.sig === sig) return cached;
    const name = c.lead_name || phone(c.contact_phone) || c.contact_bsuid || 'Unknown contact';
    const unread = c.unread_count > 0;
    const assignee = c.assignee_id ? this.ctx.memberName(c.assignee_id) : null;
    const labels = (c.label_ids || []).map((id) => this.ctx.labels.get(id)).filter(Boolean);
    const li = h(
      'li',
      { dataset: { sig } },
      h(
        'a',
        {
          class: ['conv', unread && 'unread'],
          href: this.opts.href(c.id),
          dataset: { id: c.id, unread: String(c.unread_count || 0) },
          'aria-current': c.id === this.selected ? 'true' : null,
        },
        avatar(name, c.lead_id),
        h(
          'span',
          { class: 'conv-main' },
          h('span', { class: 'conv-top' }, h('span', { class: 'conv-name' }, name), h('time', { datetime: at, class: 'conv-time', title: full(at) }, when(at))),
          h(
            'span',
            { class: 'conv-bottom' },
            h('span', { class: 'conv-preview' }, previewText(c.last_message, this.ctx)),
            unread ? h('span', { class: 'badge unread-badge', 'aria-label': `${c.unread_count} unread` }, String(c.unread_count)) : null,
          ),
          h(
            'span',
            { class: 'conv-meta' },
            h('span', { class: ['conv-assignee', !assignee && 'none'] }, assignee ? `→ ${assignee}` : 'Unassigned'),
            c.status === 'closed' ? h('span', { class: 'chip closed' }, 'Closed') : null,
            labels.map((l) => h('span', { class: `chip label hue-${labelHue(l)}` }, l.name)),
          ),
        ),
      ),
    );
    this.els.set(c.id, li);
    return li;
  }

  render() {
    // A row that is redrawn while it has the keyboard focus hands the focus to its new self.
    const active = document.activeElement;
    const focusedId = active && this.ul.contains(active) ? active.dataset.id : null;
    const list = this.sorted();
    const keep = new Set(list.map((c) => c.id));
    for (const id of [...this.els.keys()]) if (!keep.has(id)) this.els.delete(id);
    const nodes = list.map((c) => this.itemEl(c));
    // Move only what changed place, so focus and hover survive an update.
    let cursor = this.ul.firstChild;
    for (const node of nodes) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
      } else {
        this.ul.insertBefore(node, cursor);
      }
    }
    while (cursor) {
      const nx = cursor.nextSibling;
      cursor.remove();
      cursor = nx;
    }
    if (focusedId && !this.ul.contains(document.activeElement)) {
      const again = this.ul.querySelector(`a[data-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    const empty = this.opts.emptyText;
    this.empty.textContent = (typeof empty === 'function' ? empty() : empty) || 'No conversations here.';
    this.empty.hidden = list.length > 0 || this.loading;
    this.more.hidden = !this.next;
  }
}

/** The label colours people pick from: [name, hex]; entry i is the chip class hue-i. */
export const PALETTE = [
  ['Teal', '#22c3a8'],
  ['Sky', '#228dc3'],
  ['Blue', '#223dc3'],
  ['Violet', '#5722c3'],
  ['Purple', '#a822c3'],
  ['Pink', '#c3228d'],
  ['Red', '#c3223d'],
  ['Orange', '#c35722'],
  ['Amber', '#c39a22'],
  ['Lime', '#72c322'],
  ['Green', '#22c33d'],
  ['Emerald', '#22c372'],
];
const PALETTE_HUES = [170, 200, 230, 260, 290, 320, 350, 20, 45, 90, 130, 150];

/** The hue (0..359) of a #rgb / #rrggbb colour, or null. */
function hexHue(color) {
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(String(color || '').trim());
  if (!m) return null;
  const x = m[1].length === 3 ? [...m[1]].map((c) => c + c).join('') : m[1];
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(x.slice(i, i + 2), 16) / 255);
  const max = Math.max(r, g, b);
  const d = max - Math.min(r, g, b);
  if (d === 0) return null;
  const hh = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  return (hh * 60 + 360) % 360;
}

/** A label's colour class (0..11): the palette entry nearest its colour, else from its name. */
export function labelHue(l) {
  const hh = hexHue(l.color);
  if (hh !== null) {
    let best = 0;
    PALETTE_HUES.forEach((p, i) => {
      const dist = (x) => Math.min(Math.abs(x - hh), 360 - Math.abs(x - hh));
      if (dist(p) < dist(PALETTE_HUES[best])) best = i;
    });
    return best;
  }
  let x = 0;
  for (const ch of String(l.color || l.name)) x = (x * 31 + ch.codePointAt(0)) % 360;
  return x % 12;
}
