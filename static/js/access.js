// "Who has access" in the lead panel: the conversation's access list with the reason for each
// member, and (for admins and the assignee: `can.manage_access`) sharing the chat with a member
// or taking explicit access back.

import { api } from './api.js';
import { h, replace } from './dom.js';

const REASONS = {
  admin: 'admin',
  assignee: 'assignee',
  granted_label: 'through a label',
  explicit: 'shared with them',
  others_flag: 'sees others’ chats',
  unassigned_flag: 'sees unassigned chats',
};

export class AccessBox {
  constructor(ctx, conv, onGone) {
    this.ctx = ctx;
    this.conv = conv;
    this.onGone = onGone;
    this.el = h('section', { class: 'panel-section', 'aria-label': 'Who has access' });
    this.listing = null;
  }

  setConversation(c) {
    const changed =
      (c.assignee_id !== undefined && c.assignee_id !== this.conv.assignee_id) ||
      (c.can && JSON.stringify(c.can) !== JSON.stringify(this.conv.can)) ||
      (c.label_ids && JSON.stringify(c.label_ids) !== JSON.stringify(this.conv.label_ids));
    this.conv = { ...this.conv, ...c };
    if (changed) this.load();
  }

  async load() {
    try {
      this.listing = await api.get(`/conversations/${this.conv.id}/access`);
    } catch (e) {
      if (e.status === 404) this.onGone();
      else replace(this.el, h('h3', {}, 'Who has access'), h('p', { class: 'form-error' }, e.message));
      return;
    }
    this.render();
  }

  render(errorText = '') {
    const l = this.listing;
    const manage = this.ctx.can(this.conv, 'manage_access');
    const error = h('p', { class: 'form-error', role: 'alert' }, errorText);
    const rows = (l.members || []).map((m) => {
      const who = m.member_id === this.ctx.me.id ? `${m.name || m.email} (you)` : m.name || m.email;
      const reasons = (m.reasons || []).map((r) => REASONS[r] || r).join(', ');
      let remove = null;
      if (manage && (m.reasons || []).includes('explicit')) {
        remove = h('button', { type: 'button', class: 'btn ghost small', 'aria-label': `Remove access for ${m.name || m.email}` }, 'Remove');
        remove.addEventListener('click', () => this.change('DELETE', m.member_id, error));
      }
      return h('li', { class: 'access-member', dataset: { id: m.member_id } }, h('span', { class: 'access-name' }, who), h('span', { class: 'muted small' }, ` — ${reasons}`), remove);
    });
    let form = null;
    if (manage) {
      const inList = new Set((l.members || []).map((m) => m.member_id));
      const others = [...this.ctx.members.values()].filter((m) => m.status === 'active' && !inList.has(m.id));
      if (others.length) {
        const select = h('select', { 'aria-label': 'Share with', id: 'share-with' }, h('option', { value: '' }, 'Share with…'), others.map((m) => h('option', { value: m.id }, m.name || m.email)));
        const share = h('button', { type: 'submit', class: 'btn small' }, 'Share');
        form = h('form', { class: 'share-form', 'aria-label': 'Share this chat' }, select, share);
        form.addEventListener('submit', (ev) => {
          ev.preventDefault();
          if (select.value) this.change('POST', select.value, error);
        });
      }
    }
    replace(this.el, h('h3', {}, 'Who has access'), h('ul', { class: 'access-list', 'aria-label': 'Members with access' }, rows), form, error);
  }

  async change(method, memberId, error) {
    error.textContent = '';
    try {
      await (method === 'POST' ? api.post : api.del)(`/conversations/${this.conv.id}/access`, { member_ids: [memberId] });
    } catch (e) {
      if (e.status === 404) return this.onGone();
      return this.render(e.message);
    }
    return this.load();
  }
}
