// Settings: Labels. Placeholder for the second phase (admin settings pages); the API exists.

import { h, replace } from '../dom.js';

export function render(root) {
  replace(
    root,
    h('section', { class: 'settings' }, h('h1', {}, 'Labels'), h('p', { class: 'muted' }, 'This settings page is coming soon. Its API is available today.')),
  );
  return {};
}
