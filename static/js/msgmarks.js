// What a message's sender did to it after sending it: "Edited" (the older texts on demand)
// and "Deleted" (the text stays, struck through, for those who can see the chat).

import { h } from './dom.js';
import { full } from './format.js';

// What the marks depend on (part of a bubble's cache key).
export function changeSig(m) {
  return [m.edited_at || null, m.revoked_at || null];
}

export function changeMarks(m) {
  const marks = [];
  if (m.revoked_at) {
    const who = m.direction === 'out' ? 'Deleted' : 'Deleted by the customer';
    marks.push(h('span', { class: 'msg-deleted', title: full(m.revoked_at) }, who));
  }
  if (m.edited_at) {
    const older = (m.edits || []).map((e) => h('li', {}, h('time', { datetime: e.at }, full(e.at)), ' · ', e.text || ''));
    marks.push(h('details', { class: 'msg-edited' }, h('summary', { title: full(m.edited_at) }, 'Edited'), h('ul', { 'aria-label': 'Earlier versions' }, older)));
  }
  return marks.length ? h('div', { class: 'msg-marks' }, marks) : null;
}
