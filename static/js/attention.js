// What asks for the agent's attention: unread counts (Mine, Unassigned, the tab title),
// in-page notices, and desktop notifications shown by one tab only.
//
// Every open tab receives the same live events. The tab holding the "sb-notify" Web Lock (or,
// without Web Locks, the oldest tab heard on the BroadcastChannel) is the one that notifies;
// tabs tell each other on the channel whether they are in view, so "while the tab is hidden"
// means while no tab of the app is in view.

import { api } from './api.js';
import { h } from './dom.js';

const CHANNEL = 'switchboard-attention';
const PREFS = 'sb.notify';

/** Notification preferences (per browser): {desktop, sound}. */
export function notifyPrefs() {
  try {
    return { desktop: false, sound: false, ...JSON.parse(localStorage.getItem(PREFS) || '{}') };
  } catch {
    return { desktop: false, sound: false };
  }
}

export function setNotifyPrefs(p) {
  localStorage.setItem(PREFS, JSON.stringify(p));
}

export class Attention {
  constructor(ctx) {
    this.ctx = ctx;
    this.mine = new Map(); // id -> conversation assigned to me
    this.pool = new Map(); // id -> unassigned conversation
    this.listeners = new Set();
    this.tabId = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    this.born = Date.now();
    this.leader = false;
    this.peers = new Map(); // tabId -> {visible, born, at}
    this.toasts = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    this.seen = new Set(); // event cursors already notified
    this.channel = 'BroadcastChannel' in window ? new BroadcastChannel(CHANNEL) : null;
    if (this.channel) this.channel.onmessage = (m) => this.onPeer(m.data);
    this.onVisibility = () => this.announce();
    document.addEventListener('visibilitychange', this.onVisibility);
    this.beat = setInterval(() => this.announce(), 2000);
    this.announce();
    this.elect();
    this.off = ctx.live.on((e) => this.onEvent(e));
  }

  destroy() {
    this.off();
    clearInterval(this.beat);
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.channel) {
      this.channel.postMessage({ type: 'bye', id: this.tabId });
      this.channel.close();
    }
    if (this.releaseLock) this.releaseLock();
  }

  // ---- counts ----

  on(fn) {
    this.listeners.add(fn);
    fn(this.counts());
    return () => this.listeners.delete(fn);
  }

  /** {mine: my chats with unread messages, unassigned: unassigned open chats with unread, unread: messages unread in my chats} */
  counts() {
    let mine = 0;
    let unread = 0;
    for (const c of this.mine.values()) {
      if (c.unread_count > 0) {
        mine += 1;
        unread += c.unread_count;
      }
    }
    let unassigned = 0;
    for (const c of this.pool.values()) if (c.status !== 'closed' && c.unread_count > 0) unassigned += 1;
    return { mine, unassigned, unread };
  }

  changed() {
    const c = this.counts();
    for (const fn of [...this.listeners]) fn(c);
  }

  async load() {
    const me = this.ctx.me.id;
    try {
      const [mine, pool] = await Promise.all([
        api.get('/conversations', { assignee_id: me, limit: 200 }),
        this.ctx.isAdmin || this.ctx.perms.view_unassigned ? api.get('/conversations', { unassigned: 'true', limit: 200 }) : { conversations: [] },
      ]);
      this.mine = new Map(mine.conversations.map((c) => [c.id, c]));
      this.pool = new Map(pool.conversations.map((c) => [c.id, c]));
    } catch {
      /* counts stay as they were */
    }
    this.changed();
  }

  track(c) {
    if (!c || !c.id) return;
    const me = this.ctx.me.id;
    const prev = this.mine.get(c.id) || this.pool.get(c.id);
    const full = prev ? { ...prev, ...c } : c;
    this.mine.delete(c.id);
    this.pool.delete(c.id);
    if (full.assignee_id === me) this.mine.set(c.id, full);
    else if (!full.assignee_id) this.pool.set(c.id, full);
    this.changed();
  }

  // ---- events ----

  onEvent(e) {
    const d = e.data || {};
    switch (e.type) {
      case 'conversation.created':
      case 'conversation.updated':
      case 'conversation.assigned':
        this.track(d);
        break;
      case 'message.created':
        if (d.direction === 'in' && this.mine.has(d.conversation_id) && !this.anyTabVisible()) {
          const c = this.mine.get(d.conversation_id);
          this.notify(e, `${c.lead_name || 'A customer'} wrote`, d.text || 'New message', d.conversation_id);
        }
        break;
      case 'assignment.alert':
        this.alerted(e, d);
        break;
      case 'access.lost':
        if (this.mine.delete(d.conversation_id) | this.pool.delete(d.conversation_id)) this.changed();
        break;
      case 'mention.created': {
        const by = (d.by && d.by.name) || 'Someone';
        this.notify(e, `${by} mentioned you`, d.text || 'In an internal note', d.conversation_id);
        this.toast(`${by} mentioned you in a note`, d.conversation_id);
        break;
      }
      case 'resync':
        this.load();
        break;
      default:
    }
  }

  async alerted(e, d) {
    let name = null;
    const c = d.conversation_id && (this.mine.get(d.conversation_id) || this.pool.get(d.conversation_id));
    if (c) name = c.lead_name;
    if (!name && d.lead_id) {
      try {
        name = (await api.get(`/leads/${d.lead_id}`)).name;
      } catch {
        /* a chat without its name */
      }
    }
    const text = `${name || 'A chat'} is now assigned to you`;
    const target = d.conversation_id || (d.lead_id ? { lead: d.lead_id } : null);
    this.toast(text, target);
    this.notify(e, 'Assigned to you', name || 'A new chat', target);
  }

  /** A notice inside the page, in every tab (it is not a desktop notification). */
  toast(text, target) {
    const open = target ? h('a', { href: typeof target === 'string' ? `#/inbox/${target}` : '#/inbox', class: 'btn small' }, 'Open') : null;
    if (open && typeof target !== 'string') {
      open.addEventListener('click', (ev) => {
        ev.preventDefault();
        openChat(target);
      });
    }
    const dismiss = h('button', { type: 'button', class: 'btn ghost small', 'aria-label': 'Dismiss' }, '×');
    const el = h('div', { class: 'toast' }, h('span', {}, text), open, dismiss);
    const remove = () => el.remove();
    dismiss.addEventListener('click', remove);
    if (open) open.addEventListener('click', remove);
    this.toasts.append(el);
    setTimeout(remove, 15000);
  }

  /** A desktop notification, from the elected tab only, once per event. */
  notify(e, title, body, target) {
    const prefs = notifyPrefs();
    const key = e.cursor || `${e.type}-${JSON.stringify(e.data)}`;
    if (!this.leader || this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > 500) this.seen = new Set([...this.seen].slice(-250));
    if (prefs.sound) beep();
    const N = window.Notification;
    if (!prefs.desktop || !N || N.permission !== 'granted') return;
    const n = new N(title, { body, tag: key, icon: undefined });
    n.onclick = () => {
      window.focus();
      if (target) openChat(target);
      n.close();
    };
  }

  // ---- one tab notifies ----

  elect() {
    if (navigator.locks && navigator.locks.request) {
      navigator.locks
        .request('sb-notify', () => {
          this.leader = true;
          return new Promise((resolve) => {
            this.releaseLock = resolve;
          });
        })
        .catch(() => {});
      return;
    }
    // No Web Locks: the oldest tab heard in the last few seconds leads.
    this.leader = true;
    this.recount = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.peers) if (now - p.at > 6000) this.peers.delete(id);
      this.leader = [...this.peers.values()].every((p) => p.born > this.born || (p.born === this.born && p.id > this.tabId));
    }, 1000);
  }

  announce() {
    if (this.channel) this.channel.postMessage({ type: 'tab', id: this.tabId, born: this.born, visible: document.visibilityState === 'visible' });
  }

  onPeer(m) {
    if (!m || !m.id || m.id === this.tabId) return;
    if (m.type === 'bye') this.peers.delete(m.id);
    else if (m.type === 'tab') this.peers.set(m.id, { id: m.id, born: m.born, visible: m.visible, at: Date.now() });
  }

  anyTabVisible() {
    if (document.visibilityState === 'visible') return true;
    const now = Date.now();
    return [...this.peers.values()].some((p) => p.visible && now - p.at < 6000);
  }
}

/** Opens a chat: by its id, or a lead's ({lead}) newest one. */
async function openChat(target) {
  if (typeof target === 'string') {
    location.hash = `#/inbox/${target}`;
    return;
  }
  try {
    const page = await api.get('/conversations', { lead_id: target.lead, limit: 1 });
    location.hash = page.conversations[0] ? `#/inbox/${page.conversations[0].id}` : '#/inbox';
  } catch {
    location.hash = '#/inbox';
  }
}

/** A short tone (Web Audio; no file to fetch). */
function beep() {
  try {
    const ac = new (window.AudioContext || window.webkitAudioContext)();
    const o = ac.createOscillator();
    const g = ac.createGain();
    o.frequency.value = 880;
    g.gain.value = 0.08;
    o.connect(g).connect(ac.destination);
    o.start();
    o.stop(ac.currentTime + 0.15);
    o.onended = () => ac.close();
  } catch {
    /* no sound */
  }
}

/** A bell drawn inline (no emoji font needed). */
function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: '18', height: '18', fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true' })) svg.setAttribute(k, v);
  for (const d of ['M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9', 'M10.3 21a1.94 1.94 0 0 0 3.4 0']) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** The bell in the header: desktop notifications and sound, asked for on a click. */
export function notifyControl() {
  const button = h('button', { type: 'button', class: 'btn ghost bell', 'aria-expanded': 'false', 'aria-controls': 'notify-panel', 'aria-label': 'Notifications' }, bellIcon());
  const desktop = h('input', { type: 'checkbox', id: 'notify-desktop' });
  const sound = h('input', { type: 'checkbox', id: 'notify-sound' });
  const note = h('p', { class: 'muted small' });
  const panel = h(
    'div',
    { class: 'notify-panel', id: 'notify-panel', role: 'group', 'aria-label': 'Notifications', hidden: true },
    h('label', { class: 'check', for: 'notify-desktop' }, desktop, ' Desktop notifications'),
    h('label', { class: 'check', for: 'notify-sound' }, sound, ' Sound'),
    note,
  );
  const sync = () => {
    const p = notifyPrefs();
    const N = window.Notification;
    desktop.checked = p.desktop && !!N && N.permission === 'granted';
    sound.checked = p.sound;
    note.textContent = !N ? 'This browser cannot show notifications.' : N.permission === 'denied' ? 'Notifications are blocked in the browser’s site settings.' : '';
  };
  button.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    button.setAttribute('aria-expanded', String(!panel.hidden));
    sync();
  });
  desktop.addEventListener('change', async () => {
    const p = notifyPrefs();
    p.desktop = desktop.checked;
    if (p.desktop && window.Notification && Notification.permission !== 'granted') {
      p.desktop = (await Notification.requestPermission()) === 'granted';
    }
    setNotifyPrefs(p);
    sync();
  });
  sound.addEventListener('change', () => {
    setNotifyPrefs({ ...notifyPrefs(), sound: sound.checked });
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !panel.hidden) {
      panel.hidden = true;
      button.setAttribute('aria-expanded', 'false');
      button.focus();
    }
  });
  return h('div', { class: 'notify' }, button, panel);
}
