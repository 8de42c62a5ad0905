// The lead panel beside the chat: details, labels (editable when allowed), assignment with
// its history, and the activity timeline with filters.

import { api } from './api.js';
import { h, replace } from './dom.js';
import { full, phone, time } from './format.js';
import { assignControl } from './chat.js';
import { labelHue } from './convlist.js';
import { renderLeadDetails, renderLeadChats, renderDecisions } from './leadform.js';
import { AccessBox } from './access.js';

const TYPES = [
  ['', 'All activity'],
  ['whatsapp_session', 'WhatsApp sessions'],
  ['note', 'Notes'],
  ['assigned', 'Assignments'],
  ['claimed', 'Claims'],
  ['status_changed', 'Status changes'],
  ['message_sent', 'Messages sent'],
];

export class LeadPanel {
  constructor(ctx, conv, { onConversation, onGone } = {}) {
    this.ctx = ctx;
    this.conv = conv;
    this.onConversation = onConversation || (() => {});
    this.onGone = onGone || (() => {});
    this.lead = null;
    this.filter = { type: '', member_id: '' };
    this.details = h('section', { class: 'panel-section', 'aria-labelledby': 'lead-name' });
    this.labelsBox = h('section', { class: 'panel-section', 'aria-label': 'Labels' });
    this.assignBox = h('section', { class: 'panel-section', 'aria-label': 'Assignment' });
    this.access = new AccessBox(ctx, conv, () => this.onGone());
    this.chatsBox = h('section', { class: 'panel-section', 'aria-label': 'Chats' });
    this.decisionsBox = h('section', { class: 'panel-section', 'aria-label': 'Why assigned' });
    this.groups = new Map();
    this.timelineList = h('ol', { class: 'timeline', 'aria-label': 'Activity' });
    this.history = h('ol', { class: 'history' });
    // Where the panel lies over the chat (narrow screens), it closes with this or Escape.
    const close = h('button', { type: 'button', class: 'btn ghost small panel-close', 'aria-label': 'Close details' }, '×');
    close.addEventListener('click', () => this.el.dispatchEvent(new CustomEvent('sb-close-details', { bubbles: true })));
    this.el = h('aside', { class: 'lead-panel', id: 'lead-panel', 'aria-label': 'Lead details', tabindex: '-1' }, h('div', { class: 'panel-top' }, close), this.details, this.labelsBox, this.assignBox, this.decisionsBox, this.access.el, this.chatsBox, this.timelineSection());
    this.destroyed = false;
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.timer);
  }

  async load() {
    this.renderLabels();
    this.renderAssign();
    await Promise.all([this.loadLead(), this.loadTimeline(), this.access.load(), this.loadExtras()]);
  }

  /** The lead's chats per number and the assignment decisions (reloaded on assignment changes). */
  async loadExtras() {
    await Promise.all([renderLeadChats(this.ctx, this.chatsBox, this.conv.lead_id), renderDecisions(this.ctx, this.decisionsBox, this.conv.lead_id)]);
  }

  async loadLead() {
    try {
      const [lead, groups] = await Promise.all([api.get(`/leads/${this.conv.lead_id}`), api.get('/groups').catch(() => ({ groups: [] }))]);
      this.lead = lead;
      this.groups = new Map((groups.groups || []).map((g) => [g.id, g]));
    } catch (e) {
      if (e.status === 404) this.onGone();
      else replace(this.details, h('p', { class: 'form-error' }, e.message));
      return;
    }
    if (!this.destroyed) this.renderDetails();
  }

  renderDetails() {
    // An open editor is kept while live updates arrive: nothing typed is lost.
    if (this.details.querySelector('form')) return;
    renderLeadDetails(this.ctx, this.details, this.lead, {
      bsuid: this.conv.contact_bsuid,
      groups: this.groups,
      onSaved: (lead) => {
        this.lead = lead;
      },
    });
  }

  setConversation(c) {
    if (c.id !== this.conv.id) return;
    const changed =
      c.assignee_id !== this.conv.assignee_id ||
      JSON.stringify(c.label_ids) !== JSON.stringify(this.conv.label_ids) ||
      (c.can && JSON.stringify(c.can) !== JSON.stringify(this.conv.can));
    this.conv = { ...this.conv, ...c };
    this.access.setConversation(c);
    if (changed) {
      this.renderLabels();
      this.renderAssign();
      renderDecisions(this.ctx, this.decisionsBox, this.conv.lead_id);
      if (c.can) this.loadLead();
    }
  }

  renderLabels(editing = false) {
    const c = this.conv;
    const current = new Set(c.label_ids || []);
    const all = [...this.ctx.labels.values()];
    const canEdit = this.ctx.can(c, 'label');
    if (!editing) {
      const chips = [...current].map((id) => this.ctx.labels.get(id)).filter(Boolean).map((l) => h('span', { class: `chip label hue-${labelHue(l)}` }, l.name));
      const edit = canEdit && all.length ? h('button', { type: 'button', class: 'btn ghost small' }, 'Edit') : null;
      if (edit) edit.addEventListener('click', () => this.renderLabels(true));
      replace(this.labelsBox, h('h3', {}, 'Labels', edit), chips.length ? h('div', { class: 'chips' }, chips) : h('p', { class: 'muted small' }, 'No labels'));
      return;
    }
    const boxes = all.map((l) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: l.id, checked: current.has(l.id) }), h('span', { class: `chip label hue-${labelHue(l)}` }, l.name)));
    const save = h('button', { type: 'submit', class: 'btn primary small' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn ghost small' }, 'Cancel');
    const error = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'label-form' }, h('fieldset', {}, h('legend', {}, 'Labels'), boxes), h('div', { class: 'row-actions' }, save, cancel), error);
    cancel.addEventListener('click', () => this.renderLabels(false));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const ids = [...form.querySelectorAll('input:checked')].map((i) => i.value);
      try {
        const conv = await api.put(`/conversations/${c.id}/labels`, { label_ids: ids });
        this.conv = { ...this.conv, ...conv };
        this.onConversation(conv);
        this.renderLabels(false);
      } catch (e) {
        if (e.status === 404) this.onGone();
        else error.textContent = e.message;
      }
    });
    replace(this.labelsBox, form);
  }

  renderAssign() {
    const c = this.conv;
    const who = c.assignee_id ? this.ctx.memberName(c.assignee_id) : 'Unassigned';
    const error = h('p', { class: 'form-error', role: 'alert' });
    const act = async (path, body) => {
      try {
        const conv = await api.post(path, body);
        this.setConversation(conv);
        this.onConversation(conv, path.endsWith('/claim') ? 'claim' : 'assign');
      } catch (e) {
        if (e.status === 404) this.onGone();
        else error.textContent = e.code === 'already_assigned' ? 'Someone else claimed it first.' : e.message;
      }
    };
    const controls = [];
    if (this.ctx.can(c, 'claim')) {
      const claim = h('button', { type: 'button', class: 'btn small' }, 'Claim');
      claim.addEventListener('click', () => act(`/conversations/${c.id}/claim`, {}));
      controls.push(claim);
    }
    if (this.ctx.can(c, 'assign')) controls.push(assignControl(this.ctx, c, (id) => act(`/conversations/${c.id}/assign`, { assignee_id: id })));
    replace(this.assignBox, h('h3', {}, 'Assignment'), h('p', { class: 'assignee-now' }, who), controls.length ? h('div', { class: 'row-actions' }, controls) : null, error, h('h4', { class: 'muted small' }, 'History'), this.history);
  }

  timelineSection() {
    const type = h('select', { 'aria-label': 'Activity type' }, TYPES.map(([v, t]) => h('option', { value: v }, t)));
    const member = h('select', { 'aria-label': 'Member' }, h('option', { value: '' }, 'Everyone'), [...this.ctx.members.values()].map((m) => h('option', { value: m.id }, m.name || m.email)));
    type.addEventListener('change', () => {
      this.filter.type = type.value;
      this.loadTimeline();
    });
    this.memberFilter = member;
    member.addEventListener('change', () => {
      this.filter.member_id = member.value;
      this.loadTimeline();
    });
    return h('section', { class: 'panel-section', 'aria-label': 'Timeline' }, h('h3', {}, 'Timeline'), h('div', { class: 'filters' }, type, member), this.timelineList);
  }

  /** Members or labels changed: the pickers and chips show the current ones. */
  refreshPickers() {
    if (this.destroyed) return;
    if (!this.labelsBox.querySelector('form')) this.renderLabels();
    this.renderAssign();
    const member = this.memberFilter;
    const keep = member.value;
    replace(member, h('option', { value: '' }, 'Everyone'), [...this.ctx.members.values()].map((m) => h('option', { value: m.id }, m.name || m.email)));
    member.value = keep;
  }

  /** Reloads the timeline soon (live events come in bursts). */
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.loadTimeline();
      this.loadExtras();
    }, 250);
  }

  async loadTimeline() {
    try {
      const [page, assigned, claimed] = await Promise.all([
        api.get(`/leads/${this.conv.lead_id}/timeline`, { type: this.filter.type, member_id: this.filter.member_id, limit: 50 }),
        api.get(`/leads/${this.conv.lead_id}/timeline`, { type: 'assigned', limit: 20 }),
        api.get(`/leads/${this.conv.lead_id}/timeline`, { type: 'claimed', limit: 20 }),
      ]);
      if (this.destroyed) return;
      replace(this.timelineList, page.activities.length ? page.activities.map((a) => this.activity(a)) : h('li', { class: 'muted small' }, 'Nothing yet'));
      const hist = [...assigned.activities, ...claimed.activities].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      replace(this.history, hist.length ? hist.map((a) => this.activity(a)) : h('li', { class: 'muted small' }, 'No reassignments yet'));
    } catch (e) {
      replace(this.timelineList, h('li', { class: 'form-error' }, e.message));
    }
  }

  activity(a) {
    const d = a.data || {};
    const by = a.member_id ? this.ctx.memberName(a.member_id) : null;
    let title;
    let detail = null;
    switch (a.type) {
      case 'whatsapp_session': {
        title = `WhatsApp session${d.open ? ' (ongoing)' : ''}`;
        const bits = [
          `started by ${d.initiated_by === 'member' ? 'the team' : 'the lead'}`,
          `${d.messages_from_lead || 0} from lead`,
          `${d.messages_from_member || 0} from team`,
          d.lead_responded ? 'lead responded' : null,
          d.member_responded ? 'team responded' : null,
        ].filter(Boolean);
        detail = `${bits.join(' · ')}${d.started_at ? ` · ${time(d.started_at)}–${time(d.ended_at || d.started_at)}` : ''}`;
        break;
      }
      case 'assigned':
        title = `Assigned to ${this.ctx.memberName(d.to_member_id) || 'someone'}${by ? ` by ${by}` : ''}`;
        break;
      case 'claimed':
        title = `Claimed by ${by || 'someone'}`;
        break;
      case 'status_changed':
        title = `Marked ${d.status || d.to || 'changed'}${by ? ` by ${by}` : ''}`;
        break;
      case 'note':
        title = `Note${by ? ` by ${by}` : ''}`;
        detail = d.text || '';
        break;
      case 'message_sent':
        title = `Message sent${by ? ` by ${by}` : ''}`;
        break;
      case 'label_added':
      case 'label_removed': {
        const label = (d.label_id && this.ctx.labels.get(d.label_id)?.name) || d.name || 'a label';
        title = `Label “${label}” ${a.type === 'label_added' ? 'added' : d.label_deleted ? 'removed (the label was deleted)' : 'removed'}${by ? ` by ${by}` : ''}`;
        break;
      }
      default:
        title = `${a.type.charAt(0).toUpperCase()}${a.type.slice(1).replace(/_/g, ' ')}${by ? ` by ${by}` : ''}`;
    }
    return h('li', { class: `activity ${a.type}`, dataset: { type: a.type } }, h('span', { class: 'activity-title' }, title), detail ? h('span', { class: 'activity-detail' }, detail) : null, h('time', { class: 'muted small', datetime: a.created_at }, full(a.created_at)));
  }
}
