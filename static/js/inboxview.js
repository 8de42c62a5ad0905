// The three-pane layout shared by the inbox and the admin monitor: a live conversation list,
// the chat view and the lead panel, wired to the live connection and the keyboard.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { ConvList } from './convlist.js';
import { ChatView } from './chat.js';
import { LeadPanel } from './lead.js';
import { messageSearch, mentionsButton } from './search.js';

/**
 * @param opts.base      route prefix, e.g. '#/inbox'
 * @param opts.tools     element(s) above the list (filters)
 * @param opts.filter()  the list's current filter
 * @param opts.label     the list's accessible name
 * @param opts.search    the search input (for '/')
 */
export function renderInboxLike(root, ctx, route, opts) {
  const list = new ConvList(ctx, { filter: opts.filter, href: (id) => `${opts.base}/${id}`, label: opts.label, emptyText: opts.emptyText });
  const chatPane = h('div', { class: 'chat-pane' });
  const leadPane = h('div', { class: 'lead-pane' });
  const found = messageSearch(ctx, opts.base, opts.search);
  const mentions = mentionsButton(ctx, opts.base);
  const listPane = h('section', { class: 'list-pane', 'aria-label': opts.label }, h('div', { class: 'list-tools' }, opts.tools, mentions.el), found.el, list.el);
  const layout = h('div', { class: 'three-pane' }, listPane, chatPane, leadPane);
  replace(root, layout);

  let chat = null;
  let lead = null;
  let openId = null;

  function placeholder() {
    replace(chatPane, h('div', { class: 'placeholder' }, h('p', {}, 'Select a conversation'), h('p', { class: 'muted small' }, 'j / k move between chats · / searches')));
    replace(leadPane);
  }

  async function open(id) {
    if (id === openId) return;
    if (chat) chat.destroy();
    if (lead) lead.destroy();
    chat = null;
    lead = null;
    openId = id;
    list.select(id);
    document.body.classList.toggle('has-chat', !!id);
    layout.classList.toggle('with-chat', !!id);
    document.body.classList.remove('show-lead');
    if (!id) {
      placeholder();
      return;
    }
    let conv = list.get(id);
    if (!conv) {
      try {
        conv = await api.get(`/conversations/${id}`);
      } catch (e) {
        if (openId !== id) return;
        replace(chatPane, h('div', { class: 'placeholder', role: 'alert' }, e.status === 404 ? 'This conversation does not exist or you do not have access to it.' : e.message));
        replace(leadPane);
        return;
      }
    }
    if (openId !== id) return;
    const sync = (c) => {
      givenTo = c.assignee_id;
      list.upsert(c);
      // An action can end our access (giving the chat to someone else): ask, and say so.
      if (list.atRisk(c) || !c.can) refresh(c.id);
    };
    const onGone = () => gone(id);
    chat = new ChatView(ctx, conv, { onConversation: (c) => { sync(c); lead && lead.setConversation(c); }, onGone, back: opts.base });
    lead = new LeadPanel(ctx, conv, {
      onConversation: (c, how) => {
        sync(c);
        if (chat) {
          chat.setConversation(c);
          if (how === 'claim') chat.focusComposer();
        }
      },
      onGone,
    });
    replace(chatPane, chat.el);
    replace(leadPane, lead.el);
    chat.load();
    lead.load();
    refresh(id);
  }

  // Live events go to many viewers and carry no `can`: what the caller may do with the open
  // conversation is read again from the server (one request at a time, the latest wins).
  let refreshing = null;
  let again = false;
  async function refresh(id) {
    if (refreshing === id) {
      again = true;
      return;
    }
    refreshing = id;
    try {
      do {
        again = false;
        const c = await api.get(`/conversations/${id}`);
        if (openId !== id) break;
        list.upsert(c);
        if (chat) chat.setConversation(c);
        if (lead) lead.setConversation(c);
      } while (again && openId === id);
    } catch (e) {
      if (e.status === 404 && openId === id) gone(id);
      /* else the next event or resync tries again */
    } finally {
      if (refreshing === id) refreshing = null;
    }
  }

  /**
   * The caller lost the open chat (someone claimed it, they gave it away, an admin moved it):
   * it leaves the list and the chat says who took it, or that access ended.
   */
  let givenTo = null; // the assignee our own last action chose
  function gone(id, why = {}) {
    const last = list.get(id) || (chat && chat.conv);
    list.remove(id);
    if (openId !== id || !chat || chat.gone) return;
    const now = 'assignee_id' in why ? why.assignee_id : last && last.assignee_id;
    const to = now && now !== ctx.me.id ? ctx.memberName(now) : null;
    const named = to && to !== 'someone else';
    const by = why.by_member_id && why.by_member_id !== now && why.by_member_id !== ctx.me.id ? ctx.memberName(why.by_member_id) : null;
    chat.showGone(
      named && (givenTo === now || why.by_member_id === ctx.me.id)
        ? `You gave this chat to ${to} — you no longer have access to it.`
        : named && by && by !== 'someone else'
          ? `${by} gave this chat to ${to} — you no longer have access to it.`
          : named && why.cause !== 'label' && why.cause !== 'access'
            ? `${to} took this chat — you no longer have access to it.`
            : 'You no longer have access to this chat.',
    );
    if (lead) lead.destroy();
    lead = null;
    replace(leadPane);
    document.body.classList.remove('show-lead');
  }

  const offDirectory = ctx.onDirectory(() => {
    list.render();
    if (lead) lead.refreshPickers();
    if (chat && !chat.gone) chat.renderChrome();
  });

  const off = ctx.live.on((e) => {
    const d = e.data || {};
    switch (e.type) {
      case 'conversation.created':
      case 'conversation.updated':
      case 'conversation.assigned':
        list.upsert(d);
        if (chat) chat.setConversation(d);
        if (lead) lead.setConversation(d);
        if (d.id && d.id === openId) refresh(d.id);
        break;
      case 'message.created':
      case 'message.updated':
        if (chat) chat.onMessage(d, e.type === 'message.created');
        break;
      case 'timeline.created':
      case 'timeline.updated':
      case 'timeline.deleted':
        if (lead && (d.lead_id === lead.conv.lead_id || d.conversation_id === lead.conv.id)) lead.refreshSoon();
        if (chat && e.type !== 'timeline.deleted') chat.onActivity(d);
        break;
      case 'lead.updated':
        if (lead && d.id === lead.conv.lead_id) {
          lead.loadLead();
          refresh(openId);
        }
        break;
      case 'access.lost':
        // Addressed to us alone: a change (reassignment, a claim, a label or access removed)
        // ended our access to this chat.
        if (d.conversation_id) gone(d.conversation_id, d);
        break;
      case 'member.updated':
        // Our own role, permissions or granted labels changed: what we see may have too.
        if (d.id === ctx.me.id && !('presence' in d && Object.keys(d).length <= 2)) {
          list.load();
          if (openId && chat && !chat.gone) refresh(openId);
        }
        break;
      case 'label.updated':
      case 'label.deleted':
        break; // the directory refresh below redraws what names them
      case 'resync':
        list.load();
        if (chat) chat.reload();
        if (lead) lead.refreshSoon();
        break;
      default:
    }
  });

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (ev.key === 'Escape' && document.body.classList.contains('show-lead') && t !== opts.search) {
      ev.preventDefault();
      closeDetails();
      return;
    }
    const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
    if (typing) {
      if (ev.key === 'Escape' && t === opts.search) t.blur();
      return;
    }
    if (ev.key === 'j' || ev.key === 'k') {
      const id = list.neighbour(ev.key === 'j' ? 1 : -1);
      if (id) {
        ev.preventDefault();
        location.hash = `${opts.base}/${id}`;
        const a = list.ul.querySelector(`a[data-id="${id}"]`);
        if (a) a.focus({ preventScroll: false });
      }
    } else if (ev.key === '/' && opts.search) {
      ev.preventDefault();
      opts.search.focus();
      opts.search.select();
    }
  }
  document.addEventListener('keydown', onKey);

  function closeDetails() {
    document.body.classList.remove('show-lead');
    const toggle = chat && chat.detailsButton;
    if (toggle) {
      toggle.setAttribute('aria-expanded', 'false');
      if (toggle.isConnected) toggle.focus();
    }
  }
  leadPane.addEventListener('sb-close-details', closeDetails);

  placeholder();
  list.load().then(() => list.select(openId));
  open(route.id);

  return {
    list,
    reload: () => list.load(),
    update(r) {
      open(r.id);
    },
    destroy() {
      off();
      offDirectory();
      mentions.destroy();
      document.removeEventListener('keydown', onKey);
      document.body.classList.remove('has-chat', 'show-lead');
      if (chat) chat.destroy();
      if (lead) lead.destroy();
    },
  };
}

/** A search box that calls onChange (debounced) with a valid query or ''. */
export function searchBox(id, onChange) {
  const input = h('input', { id, type: 'search', class: 'search', placeholder: 'Search', 'aria-label': 'Search by name or phone', maxlength: '100', autocomplete: 'off' });
  let t = null;
  input.addEventListener('input', () => {
    clearTimeout(t);
    t = setTimeout(() => onChange(input.value.trim()), 250);
  });
  // Escape empties the box and the filter with it (the browser clears only the text).
  input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.preventDefault();
    clearTimeout(t);
    input.value = '';
    onChange('');
  });
  return input;
}

/** A label filter select; calls onChange(labelId or ''). */
export function labelSelect(ctx, onChange) {
  const select = h('select', { 'aria-label': 'Filter by label', class: 'label-filter' });
  const fill = () => {
    const keep = select.value;
    replace(select, h('option', { value: '' }, 'All labels'), [...ctx.labels.values()].map((l) => h('option', { value: l.id }, l.name)));
    select.value = [...select.options].some((o) => o.value === keep) ? keep : '';
  };
  fill();
  // Labels come and go: the filter offers the current ones while it is on the page.
  const off = ctx.onDirectory ? ctx.onDirectory(() => (select.isConnected ? fill() : off())) : null;
  select.addEventListener('change', () => onChange(select.value));
  return select;
}
