// The chat view: message bubbles for every stored type, delivery ticks, date separators,
// paging up with before=, the composer (reply-to, Enter sends, optimistic pending bubble),
// the template form when the 24-hour window is closed, and the read-only banner.

import { api } from './api.js';
import { h, replace, linkify, avatar } from './dom.js';
import { time, full, dayKey, dayLabel, relative, phone } from './format.js';
import { noteRow, noteBox } from './notes.js';
import { changeMarks, changeSig } from './msgmarks.js';
import { templatePicker } from './templatepicker.js';
import { ourReactions, isRow, reactionsLine, reactButton, typingNotifier } from './reactions.js';
import { quickReplies } from './quickreply.js';
import { Attachment, openLightbox } from './attach.js';

const TICKS = {
  pending: ['🕓', 'Sending'],
  queued: ['🕓', 'Queued'],
  sent: ['✓', 'Sent'],
  delivered: ['✓✓', 'Delivered'],
  read: ['✓✓', 'Read'],
  failed: ['!', 'Failed'],
};

let pendingSeq = 0;

/** Statuses only move forward (a late 202 answer must not undo a "sent" event). */
const RANK = { pending: 0, queued: 1, sent: 2, delivered: 3, read: 4, failed: 5 };
const rank = (s) => RANK[s] ?? 0;

export class ChatView {
  constructor(ctx, conv, { onConversation, onGone, back } = {}) {
    this.ctx = ctx;
    this.conv = conv;
    this.onConversation = onConversation || (() => {});
    // Called with a sentence when the caller can no longer see this chat (a 404 anywhere).
    this.onGone = onGone || (() => {});
    this.gone = false;
    this.messages = []; // oldest first
    this.byId = new Map();
    this.els = new Map();
    this.older = null; // next_cursor for paging up
    this.loadingOlder = false;
    this.replyTo = null;
    this.destroyed = false;

    this.header = h('header', { class: 'chat-head' });
    this.banner = h('div', { class: 'banner', role: 'note', hidden: true });
    this.topSentinel = h('div', { class: 'older', 'aria-hidden': 'true' });
    this.list = h('div', { class: 'messages-inner' });
    this.scroller = h('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' }, this.topSentinel, this.list);
    this.newPill = h('button', { type: 'button', class: 'new-pill', hidden: true }, 'New messages ↓');
    this.newPill.addEventListener('click', () => this.scrollToBottom());
    this.footer = h('div', { class: 'chat-foot' });
    this.notes = noteBox(ctx, conv, (n) => (this.onMessage(n, true), this.scrollToBottom()));
    this.el = h('section', { class: 'chat', 'aria-label': 'Conversation', dataset: { id: conv.id } }, this.header, this.banner, h('div', { class: 'messages-wrap' }, this.scroller, this.newPill), this.footer, this.notes);
    this.back = back;

    this.scroller.addEventListener('keydown', (ev) => {
      if ((ev.key === 'r' || ev.key === 'R') && !ev.ctrlKey && !ev.metaKey && !ev.altKey && this.ctx.can(this.conv, 'reply')) {
        const last = [...this.messages].reverse().find((m) => m.direction === 'in' && m.wamid);
        if (last) {
          ev.preventDefault();
          this.setReplyTo(last);
        }
      }
    });
    this.scroller.addEventListener('scroll', () => {
      if (this.atBottom()) this.newPill.hidden = true;
    });
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadOlder();
    }, { root: this.scroller, rootMargin: '200px 0px 0px 0px' });
    this.observer.observe(this.topSentinel);
    this.windowTimer = setInterval(() => this.renderFooter(), 60000);
    this.renderChrome();
  }

  destroy() {
    this.destroyed = true;
    this.observer.disconnect();
    clearInterval(this.windowTimer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.readTimer);
  }

  async load() {
    try {
      const page = await api.get(`/conversations/${this.conv.id}/messages`, { limit: 50 });
      if (this.destroyed) return;
      this.messages = [];
      this.byId.clear();
      for (const m of page.messages) this.put(m);
      this.older = page.next_cursor;
      this.renderMessages();
      this.scrollToBottom();
      this.markRead();
    } catch (e) {
      replace(this.list, h('p', { class: 'form-error', role: 'alert' }, e.message));
      return;
    }
    this.loadCalls();
  }

  /** WhatsApp calls of this chat (`call` activities on the lead's timeline), among its messages. */
  async loadCalls() {
    try {
      const page = await api.get(`/leads/${this.conv.lead_id}/timeline`, { type: 'call', limit: 50 });
      if (this.destroyed) return;
      const bottom = this.atBottom();
      let any = false;
      for (const a of page.activities || []) any = this.putCall(a) || any;
      if (!any) return;
      this.renderMessages();
      if (bottom) this.scrollToBottom();
    } catch {
      /* calls stay on the lead's timeline */
    }
  }

  /** A call activity as a row of the chat; false when it is not this chat's. */
  putCall(a) {
    if (a.type !== 'call' || a.conversation_id !== this.conv.id) return false;
    this.put({ id: `call-${a.id}`, type: 'call', direction: a.data && a.data.direction, created_at: a.created_at, call: a.data || {} });
    return true;
  }

  /** timeline.created / timeline.updated: a call shows up (or changes) live. */
  onActivity(a) {
    if (!this.putCall(a)) return;
    const bottom = this.atBottom();
    this.renderMessages();
    if (bottom) this.scrollToBottom();
  }

  /** Refetches the newest page (after a resync) keeping what was loaded above it. */
  async reload() {
    try {
      const page = await api.get(`/conversations/${this.conv.id}/messages`, { limit: 50 });
      const conv = await api.get(`/conversations/${this.conv.id}`);
      if (this.destroyed) return;
      const bottom = this.atBottom();
      for (const m of page.messages) this.put(m);
      this.setConversation(conv);
      this.renderMessages();
      if (bottom) this.scrollToBottom();
    } catch {
      /* the next event or resync tries again */
    }
  }

  async loadOlder() {
    if (!this.older || this.loadingOlder || !this.messages.length) return;
    this.loadingOlder = true;
    this.topSentinel.textContent = 'Loading older messages…';
    try {
      const page = await api.get(`/conversations/${this.conv.id}/messages`, { limit: 50, before: this.older });
      if (this.destroyed) return;
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      for (const m of page.messages) this.put(m, true);
      this.older = page.next_cursor;
      this.renderMessages();
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
    } catch {
      /* try again on the next scroll */
    } finally {
      this.loadingOlder = false;
      this.topSentinel.textContent = this.older ? '' : 'Beginning of the conversation';
    }
  }

  /** Inserts or replaces a message, keeping time order (ties: arrival order). */
  put(m, older = false) {
    const prev = this.byId.get(m.id);
    if (prev) {
      const keep = rank(m.status) < rank(prev.status) ? { status: prev.status, error: prev.error } : null;
      Object.assign(prev, m, keep || {});
      return false;
    }
    const copy = { ...m };
    this.byId.set(copy.id, copy);
    // By time as numbers ("…05Z" and "…05.120Z" don't compare as text), ties by arrival.
    const at = Date.parse(copy.created_at);
    if (older) {
      let i = 0;
      while (i < this.messages.length && Date.parse(this.messages[i].created_at) <= at) i++;
      this.messages.splice(i, 0, copy);
    } else {
      let i = this.messages.length;
      while (i > 0 && Date.parse(this.messages[i - 1].created_at) > at && !this.messages[i - 1].pending) i--;
      this.messages.splice(i, 0, copy);
    }
    return true;
  }

  remove(id) {
    const m = this.byId.get(id);
    if (!m) return;
    this.byId.delete(id);
    this.messages = this.messages.filter((x) => x.id !== id);
  }

  atBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 40;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.newPill.hidden = true;
  }

  // ---- live ----

  onMessage(m, created) {
    if (m.conversation_id !== this.conv.id) return;
    const bottom = this.atBottom();
    const isNew = this.put(m);
    this.renderMessages();
    if (created && isNew) {
      if (bottom || m.direction === 'out') this.scrollToBottom();
      else this.newPill.hidden = false;
      if (m.direction === 'in') this.markRead();
    }
  }

  setConversation(c) {
    if (c.id !== this.conv.id || this.gone) return;
    const key = (x) => JSON.stringify([x.assignee_id, x.status, x.window_expires_at, x.template_required, x.lead_name, x.can]);
    const before = key(this.conv);
    this.conv = { ...this.conv, ...c };
    const after = key(this.conv);
    if (before !== after) {
      this.renderChrome();
      this.renderMessages();
      if (this.conv.unread_count > 0) this.markRead();
    }
  }

  markRead() {
    if (!this.ctx.can(this.conv, 'reply') || document.visibilityState !== 'visible') return;
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      api.post(`/conversations/${this.conv.id}/read`).catch(() => {});
    }, 300);
  }

  // ---- chrome: header, banner, footer ----

  renderChrome() {
    this.renderHeader();
    this.renderBanner();
    this.renderFooter();
  }

  renderHeader() {
    const c = this.conv;
    const name = c.lead_name || phone(c.contact_phone) || 'Unknown contact';
    const actions = [];
    if (this.ctx.can(c, 'change_status')) {
      const closing = c.status !== 'closed';
      const b = h('button', { type: 'button', class: 'btn ghost', id: 'chat-status' }, closing ? 'Close' : 'Reopen');
      b.addEventListener('click', async () => {
        await this.act(`/conversations/${c.id}/status`, { status: closing ? 'closed' : 'open' });
        if (closing && this.conv.status === 'closed') this.offerUndo();
      });
      actions.push(b);
    }
    const details = h('button', { type: 'button', class: 'btn ghost details-toggle', 'aria-controls': 'lead-panel', 'aria-expanded': String(document.body.classList.contains('show-lead')) }, 'Details');
    details.addEventListener('click', () => {
      const open = document.body.classList.toggle('show-lead');
      details.setAttribute('aria-expanded', String(open));
      if (open) document.getElementById('lead-panel')?.focus();
    });
    this.detailsButton = details;
    actions.push(details);
    replace(
      this.header,
      this.back ? h('a', { class: 'btn ghost back', href: this.back, 'aria-label': 'Back to the list' }, '←') : null,
      avatar(name, c.lead_id),
      h(
        'div',
        { class: 'chat-title' },
        h('h2', { id: 'chat-name' }, name),
        h('span', { class: 'muted small' }, phone(c.contact_phone) || c.contact_bsuid || '', ' · ', c.assignee_id ? `Assigned to ${this.ctx.memberName(c.assignee_id)}` : 'Unassigned', c.status === 'closed' ? ' · Closed' : ''),
      ),
      h('div', { class: 'chat-actions' }, actions),
    );
  }

  /** Closing is one tap (and near ← on phones): it can be taken back for a while. */
  offerUndo() {
    const c = this.conv;
    const undo = h('button', { type: 'button', class: 'btn small' }, 'Undo');
    const note = h('div', { class: 'undo-note', role: 'status' }, h('span', {}, 'Chat closed.'), undo);
    undo.addEventListener('click', async () => {
      note.remove();
      await this.act(`/conversations/${c.id}/status`, { status: 'open' });
    });
    this.header.after(note);
    setTimeout(() => note.remove(), 10000);
  }

  renderBanner() {
    const c = this.conv;
    if (this.ctx.can(c, 'reply')) {
      this.banner.hidden = true;
      replace(this.banner);
      return;
    }
    const text = c.assignee_id
      ? `Assigned to ${this.ctx.memberName(c.assignee_id)} — only the assignee can reply`
      : 'Unassigned — claim it to reply';
    const buttons = [];
    if (this.ctx.can(c, 'claim')) {
      const claim = h('button', { type: 'button', class: 'btn primary', id: 'claim' }, 'Claim');
      claim.addEventListener('click', () => this.act(`/conversations/${c.id}/claim`, {}));
      buttons.push(claim);
    }
    if (this.ctx.can(c, 'assign')) buttons.push(assignControl(this.ctx, c, (id) => this.act(`/conversations/${c.id}/assign`, { assignee_id: id })));
    this.bannerError = h('span', { class: 'form-error', role: 'alert' });
    replace(this.banner, h('span', { class: 'banner-text', id: 'readonly-banner' }, text), h('span', { class: 'banner-actions' }, buttons), this.bannerError);
    this.banner.hidden = false;
  }

  async act(path, body) {
    try {
      const c = await api.post(path, body);
      this.setConversation(c);
      this.onConversation(c);
      this.renderChrome();
      if (path.endsWith('/claim')) this.focusComposer();
    } catch (e) {
      if (e.status === 404) {
        this.onGone();
        return;
      }
      const msg = e.code === 'already_assigned' ? 'Someone else claimed it first.' : e.message;
      if (this.bannerError) this.bannerError.textContent = msg;
      try {
        this.setConversation(await api.get(`/conversations/${this.conv.id}`));
      } catch {
        /* keep what we have */
      }
    }
  }

  /** Free-form text may go: the 24-hour window is open and Meta has not asked for a template. */
  windowOpen() {
    const c = this.conv;
    return !c.template_required && !!c.window_expires_at && new Date(c.window_expires_at).getTime() > Date.now();
  }

  focusComposer() {
    const target = this.input && this.input.isConnected ? this.input : this.footer.querySelector('input, textarea');
    if (target) target.focus();
  }

  /** The chat is no longer the caller's to see: say why, offer nothing to do. */
  showGone(text) {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.expiryTimer);
    replace(this.footer);
    this.footer.hidden = true;
    if (this.notes) this.notes.hidden = true;
    this.bannerError = null;
    replace(this.banner, h('span', { class: 'banner-text', role: 'alert' }, text), this.back ? h('a', { class: 'btn', href: this.back }, 'Back to the list') : null);
    this.banner.hidden = false;
    for (const b of this.header.querySelectorAll('.chat-actions button:not(.details-toggle)')) b.remove();
  }

  renderFooter() {
    if (this.destroyed || this.gone) return;
    const c = this.conv;
    clearTimeout(this.expiryTimer);
    if (!this.ctx.can(c, 'reply')) {
      replace(this.footer);
      this.footer.hidden = true;
      return;
    }
    this.footer.hidden = false;
    const open = this.windowOpen();
    if (open) {
      // Switch to the template form the moment the window closes, not a minute later.
      const left = new Date(c.window_expires_at).getTime() - Date.now();
      this.expiryTimer = setTimeout(() => this.renderFooter(), Math.min(left + 50, 2 ** 31 - 1));
    }
    const mode = open ? 'text' : 'template';
    if (this.footer.dataset.mode === mode && this.footer.firstChild) {
      if (open && this.windowHint) this.windowHint.textContent = `Reply window closes ${relative(c.window_expires_at)}`;
      return;
    }
    const hadFocus = this.footer.contains(document.activeElement);
    this.footer.dataset.mode = mode;
    replace(this.footer, open ? this.composer() : this.templateForm());
    if (hadFocus) this.focusComposer();
  }

  composer() {
    const c = this.conv;
    this.windowHint = h('span', { class: 'muted small', title: full(c.window_expires_at) }, `Reply window closes ${relative(c.window_expires_at)}`);
    this.replyBox = h('div', { class: 'reply-preview', hidden: true });
    const input = h('textarea', { id: 'composer-text', class: 'composer-input', rows: '1', maxlength: '4096', placeholder: 'Type a message', 'aria-label': 'Message', enterkeyhint: 'send' });
    const send = h('button', { type: 'submit', class: 'btn primary', id: 'composer-send' }, 'Send');
    const error = h('p', { class: 'form-error', role: 'alert' });
    // Hooks: "/" quick replies (before the keydown below, so its Enter never sends), typing and attachments.
    const attachment = new Attachment(c, (m) => (this.onMessage(m, true), this.scrollToBottom()));
    const quick = quickReplies(this.ctx, this, input);
    typingNotifier(input, () => this.ctx.can(this.conv, 'reply'), () => this.conv.id);
    const form = h('form', { class: 'composer', 'aria-label': 'Reply' }, this.replyBox, attachment.panel, quick, h('div', { class: 'composer-row' }, attachment.control, input, send), h('div', { class: 'composer-meta' }, this.windowHint, error));
    attachment.dropTarget(form);
    if (!this.dropWired) {
      // A file dropped anywhere on the chat goes to the composer's attachment (when open).
      this.dropWired = true;
      this.scroller.addEventListener('dragover', (ev) => {
        if (this.attachment && ev.dataTransfer && [...ev.dataTransfer.types].includes('Files')) ev.preventDefault();
      });
      this.scroller.addEventListener('drop', (ev) => {
        const file = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
        if (this.attachment && file && this.footer.dataset.mode === 'text' && !this.footer.hidden) {
          ev.preventDefault();
          this.attachment.take(file);
        }
      });
    }
    this.attachment = attachment;
    this.composerError = error;
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      } else if (ev.key === 'Escape' && this.replyTo) {
        this.setReplyTo(null);
      }
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      error.textContent = '';
      input.value = '';
      this.sendText(text);
      input.focus();
    });
    this.input = input;
    return form;
  }

  setReplyTo(m) {
    this.replyTo = m;
    if (!this.replyBox) return;
    if (!m) {
      this.replyBox.hidden = true;
      replace(this.replyBox);
      return;
    }
    const cancel = h('button', { type: 'button', class: 'btn ghost small', 'aria-label': 'Cancel reply' }, '×');
    cancel.addEventListener('click', () => this.setReplyTo(null));
    replace(this.replyBox, h('span', { class: 'reply-label' }, 'Replying to ', h('strong', {}, this.authorOf(m)), ': ', snippet(m)), cancel);
    this.replyBox.hidden = false;
    if (this.input) this.input.focus();
  }

  /**
   * Sends a text with an optimistic bubble. A refused send turns that bubble into "Not sent —
   * reason" with Retry (the same Idempotency-Key, so the server keeps at most one message) and
   * Discard; nothing is put back in the composer, so nothing is sent twice by accident.
   */
  sendText(text, body = { type: 'text', text }) {
    const me = this.ctx.me;
    const pending = {
      id: `pending-${++pendingSeq}`,
      conversation_id: this.conv.id,
      direction: 'out',
      type: 'text',
      text,
      status: 'pending',
      pending: true,
      created_at: new Date().toISOString(),
      sent_by: { id: me.id, email: me.email, name: me.name },
      reactions: [],
      context: this.replyTo && this.replyTo.wamid ? { wamid: this.replyTo.wamid } : undefined,
      body,
      key: idempotencyKey(),
    };
    if (this.replyTo) pending.body.reply_to = this.replyTo.id;
    this.setReplyTo(null);
    this.put(pending);
    this.renderMessages();
    this.scrollToBottom();
    this.attempt(this.byId.get(pending.id)); // put() keeps a copy: that is the bubble's
  }

  async attempt(pending) {
    pending.status = 'pending';
    pending.localError = null;
    this.renderMessages();
    try {
      // A send that hangs becomes "Not sent" too; its key makes a retry safe either way.
      const m = await api.post(`/conversations/${this.conv.id}/messages`, pending.body, { 'Idempotency-Key': pending.key }, 8000);
      if (this.destroyed) return;
      this.remove(pending.id);
      this.put(m);
      this.renderMessages();
    } catch (e) {
      if (this.destroyed) return;
      if (e.status === 404) {
        this.onGone();
        return;
      }
      pending.status = 'failed';
      pending.localError = refusal(e);
      this.renderMessages();
      if (e.code === 'window_closed' || e.code === 'not_assignee') {
        api.get(`/conversations/${this.conv.id}`).then((c) => this.setConversation(c)).catch(() => {});
      }
    }
  }

  discard(pending) {
    this.remove(pending.id);
    this.els.delete(pending.id);
    this.renderMessages();
  }

  /** Sends a content item (a page or file) as its own message: `{"type":"content"}`. */
  sendContent(item) {
    this.sendText(item.title, { type: 'content', content_id: item.id });
  }

  /** Our reaction message came back: it shows under its target. */
  onReaction(m) {
    this.put(m);
    this.renderMessages();
  }

  templateForm() {
    const c = this.conv;
    const closed = c.template_required
      ? 'WhatsApp refused a free-form message: the customer has not written in the last 24 hours.'
      : c.window_expires_at
        ? `The 24-hour reply window closed ${ago(c.window_expires_at)}.`
        : 'The customer has not written yet.';
    const name = h('input', { id: 'template-name', required: true, pattern: '[a-z0-9_]+', maxlength: '512', placeholder: 'order_update', autocomplete: 'off' });
    const lang = h('input', { id: 'template-lang', required: true, value: 'en_US', maxlength: '15', autocomplete: 'off' });
    const params = h('textarea', { id: 'template-params', rows: '2', placeholder: 'One body parameter per line (optional)' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const send = h('button', { type: 'submit', class: 'btn primary' }, 'Send template');
    const form = h(
      'form',
      { class: 'template-form', 'aria-label': 'Send a template' },
      h('p', { class: 'notice' }, closed, ' Only an approved template message can be sent until the customer writes again.'),
      h('div', { class: 'template-row' }, h('label', { for: 'template-name' }, 'Template', name), h('label', { for: 'template-lang' }, 'Language', lang)),
      h('label', { for: 'template-params' }, 'Parameters', params),
      h('div', { class: 'composer-row' }, error, send),
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      if (!form.reportValidity()) return;
      const values = params.value.split('\n').map((s) => s.trim()).filter(Boolean);
      const template = { name: name.value.trim(), language: lang.value.trim() };
      if (values.length) template.components = [{ type: 'body', parameters: values.map((text) => ({ type: 'text', text })) }];
      send.disabled = true;
      try {
        const m = await api.post(`/conversations/${c.id}/messages`, { type: 'template', template });
        this.put(m);
        this.renderMessages();
        this.scrollToBottom();
        params.value = '';
      } catch (e) {
        if (e.status === 404) this.onGone();
        else error.textContent = e.message;
      } finally {
        send.disabled = false;
      }
    });
    return templatePicker(c, form, (m) => {
      this.put(m);
      this.renderMessages();
      this.scrollToBottom();
    });
  }

  // ---- messages ----

  authorOf(m) {
    if (m.direction === 'in') return this.conv.lead_name || phone(this.conv.contact_phone) || 'Contact';
    if (m.sent_by === 'whatsapp_app') return 'WhatsApp app';
    if (m.sent_by && typeof m.sent_by === 'object') return m.sent_by.id === this.ctx.me.id ? 'You' : m.sent_by.name || m.sent_by.email;
    return 'Business';
  }

  renderMessages() {
    const nodes = [];
    let day = null;
    const byWamid = new Map(this.messages.filter((m) => m.wamid).map((m) => [m.wamid, m]));
    this.ours = ourReactions(this.messages);
    for (const m of this.messages) {
      if (!isRow(m)) continue;
      const k = dayKey(m.created_at);
      if (k !== day) {
        day = k;
        nodes.push(this.separator(m.created_at));
      }
      nodes.push(this.bubble(m, byWamid));
    }
    this.list.replaceChildren(...nodes);
    if (!this.older && this.messages.length) this.topSentinel.textContent = 'Beginning of the conversation';
  }

  separator(iso) {
    const k = `sep-${dayKey(iso)}`;
    let el = this.els.get(k);
    const label = dayLabel(iso);
    if (!el || el.textContent !== label) {
      el = h('div', { class: 'day-sep', role: 'separator' }, h('span', {}, label));
      this.els.set(k, el);
    }
    return el;
  }

  bubble(m, byWamid) {
    const quoted = m.context && m.context.wamid ? byWamid.get(m.context.wamid) : null;
    const sig = JSON.stringify([m.status, m.reactions, this.ours && m.wamid ? this.ours.get(m.wamid) : null, m.text, m.call, m.error, m.localError, m.sent_by, quoted && quoted.id, this.ctx.can(this.conv, 'reply'), changeSig(m)]);
    const cached = this.els.get(m.id);
    if (cached && cached.dataset.sig === sig) return cached;
    const el = this.buildBubble(m, quoted);
    el.dataset.sig = sig;
    this.els.set(m.id, el);
    return el;
  }

  buildBubble(m, quoted) {
    if (m.type === 'note') return noteRow(m, this.ctx);
    const out = m.direction === 'out';
    if (m.type === 'call') return callRow(m);
    if (m.type === 'system') {
      return h('div', { class: 'row system', dataset: { id: m.id, type: m.type } }, h('div', { class: 'system-note' }, m.text || 'The contact’s details changed.', ' · ', time(m.created_at)));
    }
    const echo = m.sent_by === 'whatsapp_app';
    const meta = h('span', { class: 'msg-meta' }, h('time', { datetime: m.created_at, title: full(m.created_at) }, time(m.created_at)), out ? tick(m) : null);
    const bubble = h(
      'div',
      { class: ['msg', out ? 'out' : 'in', echo && 'echo', m.pending && 'pending', m.status === 'failed' && 'failed', m.revoked_at && 'revoked'], id: `m-${m.id}` },
      m.forwarded ? h('div', { class: 'msg-flag' }, '↪ Forwarded') : null,
      echo ? h('div', { class: 'msg-flag' }, 'Sent from the WhatsApp Business app') : null,
      m.context ? this.quote(m.context, quoted) : null,
      content(m),
      changeMarks(m),
      meta,
    );
    const ours = (m.wamid && this.ours && this.ours.get(m.wamid)) || '';
    const reactions = reactionsLine(m, ours);
    let by = null;
    if (out) {
      const who = echo ? 'WhatsApp app' : m.sent_by && typeof m.sent_by === 'object' ? m.sent_by.name || m.sent_by.email : null;
      const email = m.sent_by && typeof m.sent_by === 'object' ? m.sent_by.email : null;
      if (who) by = h('div', { class: 'msg-by', title: email || '' }, who);
    }
    let failedNote = null;
    if (m.pending && m.localError) {
      const retry = h('button', { type: 'button', class: 'btn small' }, 'Retry');
      retry.addEventListener('click', () => this.attempt(m));
      const discard = h('button', { type: 'button', class: 'btn ghost small' }, 'Discard');
      discard.addEventListener('click', () => this.discard(m));
      failedNote = h('div', { class: 'msg-error', role: 'alert' }, h('span', {}, `Not sent — ${m.localError}`), retry, discard);
    } else if (m.status === 'failed') {
      failedNote = h('div', { class: 'msg-error' }, `Not delivered — ${failureReason(m)}`);
    }
    let replyBtn = null;
    if (!m.pending && m.wamid && this.ctx.can(this.conv, 'reply')) {
      // Not a tab stop (a long chat would need a press per message): R in the message log
      // replies to the newest customer message; the pointer shows this button on hover.
      replyBtn = h('button', { type: 'button', class: 'btn ghost small reply-btn', 'aria-label': 'Reply to this message', tabindex: '-1' }, '↩');
      replyBtn.addEventListener('click', () => this.setReplyTo(m));
      replyBtn = [replyBtn, reactButton(this.conv, m, ours, (r) => this.onReaction(r), (text) => this.composerError && (this.composerError.textContent = text))];
    }
    return h('div', { class: ['row', out ? 'out' : 'in'], dataset: { id: m.id, type: m.type, status: m.status, direction: m.direction } }, h('div', { class: 'bubble-line' }, out ? replyBtn : null, bubble, out ? null : replyBtn), reactions, by, failedNote);
  }

  quote(ctxRef, quoted) {
    const q = h('button', { type: 'button', class: 'quote' }, quoted ? [h('strong', {}, this.authorOf(quoted)), h('span', {}, snippet(quoted))] : h('span', { class: 'muted' }, 'Quoted message'));
    if (quoted) q.addEventListener('click', () => document.getElementById(`m-${quoted.id}`)?.scrollIntoView({ block: 'center', behavior: 'smooth' }));
    else q.disabled = true;
    return q;
  }
}

/** A WhatsApp call in the chat: missed, or who called and how long it took. */
function callRow(m) {
  const c = m.call || {};
  const inbound = c.direction !== 'out';
  let what;
  if (c.missed) what = 'Missed call from the customer';
  else {
    const secs = Number(c.duration_secs);
    const took = Number.isFinite(secs) && c.duration_secs != null ? ` · ${secs >= 60 ? `${Math.floor(secs / 60)} min ` : ''}${secs % 60} s` : '';
    what = `${inbound ? 'Call from the customer' : 'Call to the customer'}${took}`;
  }
  return h(
    'div',
    { class: ['row system call', c.missed && 'missed'], dataset: { id: m.id, type: 'call' } },
    h('div', { class: 'system-note' }, h('span', { 'aria-hidden': 'true' }, '📞 '), what, ' · ', time(m.created_at)),
  );
}

/** Why a send was refused, in words. */
function refusal(e) {
  if (e.code === 'timeout') return 'the server did not answer';
  if (e.status === 0) return 'the server could not be reached';
  if (e.code === 'window_closed') return 'the 24-hour reply window is closed; send a template';
  if (e.code === 'not_assignee') return 'only the assignee can reply';
  return e.message || 'the server refused it';
}

/** Why Meta did not deliver a message. */
function failureReason(m) {
  if (!m.error) return 'WhatsApp did not deliver it';
  if (m.error.code === 131047) return 'more than 24 hours since the customer wrote; send a template (131047)';
  return `${m.error.title || 'WhatsApp refused it'} (${m.error.code})`;
}

/** A key unique to one send, kept across its retries. */
function idempotencyKey() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** "on 3 March 2026" for long ago, "12 min ago" for recent. */
function ago(iso) {
  const ms = Date.now() - new Date(iso).getTime();
  return ms > 86400000 ? `on ${full(iso)}` : relative(iso);
}

function snippet(m) {
  const t = m.text || (m.media && m.media.filename) || m.type;
  return t.length > 80 ? `${t.slice(0, 80)}…` : t;
}

function tick(m) {
  const [glyph, label] = TICKS[m.status] || ['', m.status];
  let title = label;
  if (m.status === 'failed') {
    title = m.error ? `Failed: ${m.error.title || 'error'} (${m.error.code})` : m.localError ? `Not sent: ${m.localError}` : 'Failed';
  }
  return h('span', { class: `tick ${m.status}`, dataset: { status: m.status }, title, 'aria-label': title, role: 'img' }, glyph);
}

function mediaUrl(m) {
  return `/api/v1/media/${encodeURIComponent(m.id)}`;
}

/** The body of a bubble, by stored type. */
function content(m) {
  const media = m.media || {};
  const c = m.content || {};
  const caption = m.text ? h('div', { class: 'msg-text' }, linkify(m.text)) : null;
  switch (m.type) {
    case 'text':
      return h('div', { class: 'msg-text' }, linkify(m.text || ''));
    case 'image':
      return [h('a', { class: 'media-box image', href: mediaUrl(m), target: '_blank', rel: 'noopener', 'aria-label': `Open image${m.text ? `: ${m.text}` : ''}`, onclick: (ev) => (ev.preventDefault(), openLightbox(mediaUrl(m), m.text || 'Image')) }, h('img', { src: mediaUrl(m), alt: m.text || 'Image', loading: 'lazy', decoding: 'async' })), caption];
    case 'sticker':
      return h('div', { class: 'media-box sticker' }, h('img', { src: mediaUrl(m), alt: 'Sticker', loading: 'lazy' }));
    case 'video':
      return [h('div', { class: 'media-box video' }, h('video', { src: mediaUrl(m), controls: true, preload: 'none' })), caption];
    case 'audio':
      return h('div', { class: 'audio' }, media.voice ? h('span', { class: 'muted small' }, 'Voice message') : null, h('audio', { src: mediaUrl(m), controls: true, preload: 'none' }));
    case 'document':
      return [h('a', { class: 'doc', href: mediaUrl(m), download: media.filename || 'document' }, h('span', { class: 'doc-icon', 'aria-hidden': 'true' }, '📄'), h('span', {}, media.filename || 'Document'), h('span', { class: 'muted small' }, media.mime_type || '')), media.filename === m.text ? null : caption];
    case 'location': {
      const l = c.location || {};
      const href = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(l.latitude)}&mlon=${encodeURIComponent(l.longitude)}#map=16/${encodeURIComponent(l.latitude)}/${encodeURIComponent(l.longitude)}`;
      return h('a', { class: 'location', href, target: '_blank', rel: 'noopener noreferrer' }, h('span', { 'aria-hidden': 'true' }, '📍 '), h('strong', {}, l.name || 'Location'), l.address ? h('span', { class: 'muted small block' }, l.address) : null, h('span', { class: 'muted small block' }, `${l.latitude}, ${l.longitude}`));
    }
    case 'contacts':
      return h('div', { class: 'contacts' }, (c.contacts || []).map((ct) => h('div', { class: 'contact-card' }, h('span', { 'aria-hidden': 'true' }, '👤 '), h('strong', {}, (ct.name && (ct.name.formatted_name || ct.name.first_name)) || 'Contact'), (ct.phones || []).map((p) => h('span', { class: 'muted small block' }, p.phone || p.wa_id)))));
    case 'interactive': {
      const kind = c.interactive && c.interactive.type === 'list_reply' ? 'List reply' : c.interactive && c.interactive.type === 'nfm_reply' ? 'Form reply' : 'Button reply';
      return [h('div', { class: 'msg-flag' }, kind), h('div', { class: 'msg-text' }, m.text || '')];
    }
    case 'button':
      return [h('div', { class: 'msg-flag' }, 'Quick reply'), h('div', { class: 'msg-text' }, m.text || '')];
    case 'order': {
      const items = (c.order && c.order.product_items) || [];
      return [h('div', { class: 'msg-flag' }, `🛒 Order · ${items.length} item${items.length === 1 ? '' : 's'}`), caption];
    }
    case 'template': {
      const t = c.template || {};
      if (m.text) return [h('div', { class: 'msg-flag' }, `Template · ${t.name || ''}`), caption];
      // Without the rendered text, what was filled in: the body's parameters.
      const params = (t.components || []).flatMap((x) => (x.parameters || []).map((p) => p.text).filter(Boolean));
      return [h('div', { class: 'msg-flag' }, `Template · ${t.name || ''}`), params.length ? h('div', { class: 'msg-text' }, params.join(' · ')) : null];
    }
    case 'unsupported':
      return h('div', { class: 'msg-text muted' }, 'This message type is not supported by WhatsApp.');
    default:
      return m.text ? caption : h('div', { class: 'msg-text muted' }, `(${m.type})`);
  }
}

/** "Assign…": a member picker that calls onAssign(memberId). */
export function assignControl(ctx, conv, onAssign) {
  const members = [...ctx.members.values()].filter((m) => m.status === 'active');
  const select = h(
    'select',
    { 'aria-label': 'Assign to', class: 'assign-select' },
    h('option', { value: '' }, 'Assign to…'),
    members.map((m) => h('option', { value: m.id, selected: m.id === conv.assignee_id }, m.id === ctx.me.id ? `${m.name || m.email} (me)` : m.name || m.email)),
  );
  const go = h('button', { type: 'button', class: 'btn', disabled: true }, 'Assign');
  select.addEventListener('change', () => {
    go.disabled = !select.value || select.value === conv.assignee_id;
  });
  go.addEventListener('click', () => select.value && onAssign(select.value));
  return h('span', { class: 'assign' }, select, go);
}
