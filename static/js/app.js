// Boot: who am I, then the shell (nav, live status) and a hash router over page modules.
// Each page is its own module in pages/ exporting render(root, ctx, params), which returns
// an object with optional update(params) (same page, other params) and destroy().

import { api, setUnauthorizedHandler } from './api.js';
import { Live } from './live.js';
import { h, replace, avatar } from './dom.js';
import { renderLogin } from './pages/login.js';
import { renderAccept } from './pages/accept.js';
import { renderAgencyAccept } from './pages/agencyaccept.js';
import { notAllowed } from './settings.js';
import { Attention, notifyControl } from './attention.js';
import { healthAlert } from './numberhealth.js';

const root = document.getElementById('app');

/** Pages by route name; admin-only ones are hidden from others' nav. */
export const PAGES = [
  { name: 'inbox', title: 'Inbox', module: './pages/inbox.js', show: () => true },
  { name: 'monitor', title: 'Monitor', module: './pages/monitor.js', who: 'admins', show: (c) => c.isAdmin },
  { name: 'dashboard', title: 'Dashboard', module: './pages/dashboard.js', show: () => true },
  { name: 'leads', title: 'Leads', module: './pages/leads.js', show: () => true },
  { name: 'activity', title: 'Activity', module: './pages/activity.js', show: () => true },
  { name: 'content', title: 'Content', module: './pages/content.js', settings: true, who: 'admins and members who may create or edit content', show: (c) => c.isAdmin || c.perms.create_content || c.perms.manage_content_visibility || c.perms.edit_others_content },
  { name: 'audit', title: 'Audit', module: './pages/audit.js', settings: true, who: 'admins', show: (c) => c.isAdmin },
  { name: 'team', title: 'Team', module: './pages/team.js', settings: true, who: 'admins and members with the “Manage members” permission', show: (c) => c.isAdmin || c.perms.manage_members },
  { name: 'labels', title: 'Labels', module: './pages/labels.js', settings: true, who: 'admins', show: (c) => c.isAdmin },
  { name: 'numbers', title: 'Numbers', module: './pages/numbers.js', settings: true, who: 'admins and members with the “Manage integrations” permission', show: (c) => c.isAdmin || c.perms.manage_integrations },
  { name: 'assignment', title: 'Assignment', module: './pages/assignment.js', settings: true, who: 'admins and members with the “Manage members” permission', show: (c) => c.isAdmin || c.perms.manage_members },
  { name: 'agency', title: 'Agency', module: './pages/agency.js', settings: true, who: 'admins', show: (c) => c.isAdmin },
  { name: 'webhooks', title: 'Webhooks', module: './pages/webhooks.js', settings: true, who: 'admins', show: (c) => c.isAdmin },
  { name: 'apikeys', title: 'API keys', module: './pages/apikeys.js', settings: true, who: 'admins and members with the “Manage integrations” permission', show: (c) => c.isAdmin || c.perms.manage_integrations },
  { name: 'distribution', title: 'Distribution', module: './pages/distribution.js', settings: true, who: 'admins and members with the “Manage integrations” permission', show: (c) => c.isAdmin || c.perms.manage_integrations },
  { name: 'history', title: 'History', module: './pages/history.js', settings: true, who: 'admins and members with the “Manage integrations” permission', show: (c) => c.isAdmin || c.perms.manage_integrations },
];

let session = null;

setUnauthorizedHandler(() => {
  if (session) {
    session.end();
    session = null;
  }
  showLogin('Your session ended. Please log in again.');
});

async function boot() {
  const r = parseRoute();
  if (r.page === 'accept' && r.id) {
    showAccept(decodeURIComponent(r.id));
    return;
  }
  if (r.page === 'agency-accept' && r.id) {
    showAgencyAccept(decodeURIComponent(r.id));
    return;
  }
  let me;
  try {
    me = await api.get('/auth/me');
  } catch {
    showLogin();
    return;
  }
  session = await startSession(me);
}

function showLogin(notice) {
  root.setAttribute('aria-busy', 'false');
  document.title = 'Log in · Switchboard';
  renderLogin(root, {
    notice,
    onLoggedIn: async () => {
      const me = await api.get('/auth/me');
      session = await startSession(me);
    },
  });
}

/** An invitation link (#/accept/<token>): choose a password, then straight into the inbox. */
function showAccept(token) {
  root.setAttribute('aria-busy', 'false');
  document.title = 'Accept invitation · Switchboard';
  renderAccept(root, {
    token,
    onAccepted: async () => {
      history.replaceState(null, '', '#/inbox');
      const me = await api.get('/auth/me');
      session = await startSession(me);
    },
  });
}

/** An agency's invitation (#/agency-accept/<token>): grant access, then the Agency page. */
function showAgencyAccept(token) {
  root.setAttribute('aria-busy', 'false');
  document.title = 'Grant an agency access · Switchboard';
  const onDone = async () => {
    history.replaceState(null, '', '#/agency');
    const me = await api.get('/auth/me');
    session = await startSession(me);
  };
  renderAgencyAccept(root, {
    token,
    onDone,
    onLogIn: () =>
      renderLogin(root, {
        notice: 'Log in as the admin the invitation names, then grant access.',
        onLoggedIn: async () => showAgencyAccept(token),
      }),
  });
}

/** Parses location.hash: #/page/id?k=v */
export function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = raw.split('?');
  const [page = '', ...rest] = path.split('/').filter(Boolean);
  return { page: page || 'inbox', id: rest[0] || null, rest, query: new URLSearchParams(query) };
}

async function startSession(me) {
  const live = new Live();
  live.onUnauthorized = () => {
    if (session) session.end();
    session = null;
    showLogin('Your session ended. Please log in again.');
  };
  const ctx = {
    api,
    live,
    me: me.user,
    perms: me.permissions || {},
    labelIds: me.label_ids || [],
    isAdmin: me.user.role === 'admin',
    members: new Map(),
    labels: new Map(),
    navigate: (hash) => {
      if (location.hash !== hash) location.hash = hash;
    },
    memberName(id) {
      if (!id) return null;
      if (id === ctx.me.id) return ctx.me.name || ctx.me.email;
      const m = ctx.members.get(id);
      return m ? m.name || m.email : 'someone else';
    },
    // What the caller may do with a conversation or lead: the server's answer says (`can`);
    // live events carry none, so the open conversation is refetched when one arrives.
    can: (x, what) => !!(x && x.can && x.can[what]),
  };
  // Members and labels (the directory): views that show names or pickers redraw on change.
  const directoryListeners = new Set();
  ctx.onDirectory = (fn) => {
    directoryListeners.add(fn);
    return () => directoryListeners.delete(fn);
  };
  const directoryChanged = () => {
    for (const fn of [...directoryListeners]) fn();
  };
  ctx.presence = new Map(); // member id -> 'available' | 'away' (from live events)
  ctx.refreshMembers = async () => {
    try {
      const page = await api.get('/members', { limit: 200 });
      ctx.members = new Map(page.members.map((m) => [m.id, m]));
      directoryChanged();
    } catch {
      /* members stay as they were */
    }
  };
  ctx.refreshLabels = async () => {
    try {
      const page = await api.get('/labels');
      ctx.labels = new Map(page.labels.map((l) => [l.id, l]));
      directoryChanged();
    } catch {
      /* labels stay as they were */
    }
  };

  root.setAttribute('aria-busy', 'true');
  // Live first: events from here on reach us, so the lists fetched next can't miss any.
  await live.start();
  await Promise.all([ctx.refreshMembers(), ctx.refreshLabels()]);
  let membersTimer = null;
  const offMeta = live.on((e) => {
    if (e.type === 'member.updated' && e.data && e.data.presence && !e.data.email) {
      // A presence change only: no need to refetch the members.
      ctx.presence.set(e.data.id, e.data.presence);
      directoryChanged();
      return;
    }
    if (e.type === 'member.updated' || e.type === 'resync') {
      clearTimeout(membersTimer);
      membersTimer = setTimeout(ctx.refreshMembers, 300);
    }
    if (e.type === 'label.updated' || e.type === 'label.deleted' || e.type === 'resync') ctx.refreshLabels();
  });

  const status = h('span', { class: 'live-status', role: 'status', 'aria-live': 'polite', 'data-state': 'connecting' });
  const offStatus = live.onStatus((s) => {
    status.dataset.state = s;
    status.textContent = s === 'live' ? 'Live' : s === 'reconnecting' ? 'Reconnecting…' : s === 'stopped' ? 'Offline' : 'Connecting…';
    status.title = s === 'live' ? 'Updates arrive as they happen' : 'Updates are paused; nothing is lost, they arrive on reconnect';
  });

  const nav = h('nav', { class: 'nav', 'aria-label': 'Main', id: 'main-nav' });
  // Where the links don't fit, one "Menu" button opens all of them (every page, every width).
  const menuButton = h('button', { type: 'button', class: 'btn ghost menu-button', 'aria-expanded': 'false', 'aria-controls': 'main-nav', hidden: true }, '☰ Menu');
  const setMenu = (open) => {
    nav.classList.toggle('open', open);
    menuButton.setAttribute('aria-expanded', String(open));
  };
  menuButton.addEventListener('click', () => setMenu(!nav.classList.contains('open')));
  nav.addEventListener('click', (ev) => {
    if (ev.target.closest('a')) setMenu(false);
  });
  const onMenuKey = (ev) => {
    if (ev.key === 'Escape' && nav.classList.contains('open')) {
      setMenu(false);
      menuButton.focus();
    }
  };
  const onOutside = (ev) => {
    if (nav.classList.contains('open') && !nav.contains(ev.target) && !menuButton.contains(ev.target)) setMenu(false);
  };
  document.addEventListener('keydown', onMenuKey);
  document.addEventListener('click', onOutside);
  function fitNav() {
    const header = nav.parentElement;
    if (!header) return;
    const wasOpen = nav.classList.contains('open');
    header.classList.remove('nav-collapsed');
    const overflows = nav.scrollWidth > nav.clientWidth + 1 || header.scrollWidth > header.clientWidth + 1;
    header.classList.toggle('nav-collapsed', overflows);
    menuButton.hidden = !overflows;
    if (!overflows) setMenu(false);
    else if (wasOpen) setMenu(true);
  }
  const fitter = new ResizeObserver(() => fitNav());

  // Available / Away: sent as the presence frame, remembered for the next connection.
  const presence = h('button', { type: 'button', role: 'switch', class: 'btn ghost presence', 'aria-label': 'Available' });
  const showPresence = () => {
    const available = live.presence !== 'away';
    presence.setAttribute('aria-checked', String(available));
    presence.dataset.state = available ? 'available' : 'away';
    presence.textContent = available ? 'Available' : 'Away';
    presence.title = available ? 'New chats can be assigned to you. Click to go away.' : 'Round robin skips you. Click to be available.';
  };
  presence.addEventListener('click', () => {
    live.setPresence(live.presence === 'away' ? 'available' : 'away');
    showPresence();
  });
  showPresence();

  const attention = new Attention(ctx);
  ctx.attention = attention;
  attention.load();
  const health = healthAlert(ctx);
  const main = h('main', { class: 'main', id: 'main' });
  const logout = h('button', { class: 'btn ghost', type: 'button', id: 'logout' }, 'Log out');
  logout.addEventListener('click', async () => {
    try {
      await api.post('/auth/logout');
    } catch {
      /* signed out locally either way */
    }
    end();
    session = null;
    location.hash = '';
    showLogin('You are logged out.');
  });
  const header = h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '#/inbox' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Switchboard'),
    menuButton,
    nav,
    h('div', { class: 'topbar-right' }, health.el, status, presence, notifyControl(), h('span', { class: 'me', title: ctx.me.email }, avatar(ctx.me.name || ctx.me.email, ctx.me.id, 'small'), h('span', { class: 'me-name' }, ctx.me.name || ctx.me.email)), logout),
  );
  replace(root, h('a', { class: 'skip', href: '#main' }, 'Skip to content'), header, main, attention.toasts);
  root.setAttribute('aria-busy', 'false');
  fitter.observe(header);

  // The tab title leads with the unread count of one's own chats: "(3) Inbox · Switchboard".
  let pageTitle = 'Switchboard';
  let unread = 0;
  const setTitle = () => {
    document.title = `${unread ? `(${unread}) ` : ''}${pageTitle} · Switchboard`;
  };
  const offCounts = attention.on((c) => {
    unread = c.unread;
    setTitle();
  });

  function renderNav(current) {
    const visible = PAGES.filter((p) => p.show(ctx));
    const main = visible.filter((p) => !p.settings);
    const settings = visible.filter((p) => p.settings);
    const link = (p) =>
      h('a', { href: `#/${p.name}`, class: ['nav-link', p.name === current && 'active'], 'aria-current': p.name === current ? 'page' : null, dataset: { page: p.name } }, p.title);
    replace(nav, main.map(link), settings.length ? h('span', { class: 'nav-sep', 'aria-hidden': 'true' }) : null, settings.map(link));
    fitNav();
  }

  let current = null; // { name, view }
  let routing = Promise.resolve();
  async function route() {
    const r = parseRoute();
    // Unknown pages go to the inbox; known ones the caller may not use say who may.
    const page = PAGES.find((p) => p.name === r.page);
    if (!page) {
      location.replace('#/inbox');
      return;
    }
    const allowed = page.show(ctx);
    renderNav(page.name);
    if (current && current.name === page.name && current.view && current.view.update) {
      current.view.update(r);
      return;
    }
    if (current && current.view && current.view.destroy) current.view.destroy();
    current = { name: page.name, view: null };
    pageTitle = page.title;
    setTitle();
    const slot = h('div', { class: `page page-${page.name}` });
    if (!allowed) {
      replace(main, slot);
      current.view = notAllowed(slot, page.title, page.who || 'admins');
      return;
    }
    const mod = await import(page.module);
    replace(main, slot);
    current.view = (await mod.render(slot, ctx, r)) || null;
  }
  const onHash = () => {
    routing = routing.then(route).catch((e) => console.error(e));
  };
  window.addEventListener('hashchange', onHash);
  onHash();

  function end() {
    window.removeEventListener('hashchange', onHash);
    if (current && current.view && current.view.destroy) current.view.destroy();
    current = null;
    offMeta();
    offStatus();
    offCounts();
    attention.destroy();
    health.destroy();
    fitter.disconnect();
    document.removeEventListener('keydown', onMenuKey);
    document.removeEventListener('click', onOutside);
    live.stop();
  }
  window.__sbLive = {
    drop: () => live.drop(),
    resume: () => live.resume(),
    get state() {
      return live.state;
    },
    get cursor() {
      return live.cursor;
    },
  };
  return { ctx, end };
}

boot();
