// Attachments from the composer: pick a file (or drop one on the chat) — an image, video,
// audio or document — add an optional caption, watch the upload's progress (POST /api/v1/media),
// and the file is sent as a media message. Also the lightbox that image previews open in.

import { api, ApiError } from './api.js';
import { h, replace } from './dom.js';

/** The types WhatsApp takes (the server checks them again: 415 for the rest). */
const ACCEPT = [
  'image/jpeg', 'image/png', 'video/mp4', 'video/3gpp',
  'audio/aac', 'audio/amr', 'audio/mpeg', 'audio/mp4', 'audio/ogg',
  'text/plain', 'application/pdf', 'application/msword', 'application/vnd.ms-excel', 'application/vnd.ms-powerpoint',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  '.jpg', '.jpeg', '.png', '.mp4', '.3gp', '.aac', '.amr', '.mp3', '.m4a', '.ogg', '.opus',
  '.txt', '.pdf', '.doc', '.docx', '.xls', '.xlsx', '.ppt', '.pptx',
].join(',');

/** Which message an upload goes as, from its MIME type. */
function kindOf(mime) {
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'document';
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Uploads `file`, reporting progress (0..1) → the upload `{id, mime_type, size, filename}`. */
export function uploadFile(file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/media');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.withCredentials = true;
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 201 && data) {
        resolve(data);
      } else {
        const err = (data && data.error) || {};
        reject(new ApiError(xhr.status, err.code, err.message || 'The upload failed.'));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'The server could not be reached. Check your connection.')));
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

let seq = 0;

/**
 * The composer's attachment: `control` (the Attach button, a label over a file input) and
 * `panel` (the chosen file, its caption, progress, Send file and Remove). `onSent(message)`
 * gets the stored message; `take(file)` chooses a file (a drop).
 */
export class Attachment {
  constructor(conv, onSent) {
    this.conv = conv;
    this.onSent = onSent;
    this.file = null;
    const id = `attach-file-${++seq}`;
    this.input = h('input', { type: 'file', id, class: 'visually-hidden', accept: ACCEPT });
    this.input.addEventListener('change', () => {
      if (this.input.files && this.input.files[0]) this.take(this.input.files[0]);
    });
    this.control = h('span', { class: 'attach' }, this.input, h('label', { for: id, class: 'btn ghost attach-button', title: 'Attach a file (image, video, audio, document)' }, h('span', { 'aria-hidden': 'true' }, '📎 '), 'Attach a file'));
    this.panel = h('div', { class: 'attach-panel', role: 'group', 'aria-label': 'Attachment', hidden: true });
  }

  take(file) {
    this.file = file;
    const caption = h('input', { type: 'text', class: 'attach-caption', maxlength: '1024', placeholder: 'Add a caption (optional)', 'aria-label': 'Caption' });
    const progress = h('progress', { max: '100', value: '0', 'aria-label': 'Upload progress', hidden: true });
    const send = h('button', { type: 'button', class: 'btn primary small' }, 'Send file');
    const remove = h('button', { type: 'button', class: 'btn ghost small' }, 'Remove attachment');
    const error = h('p', { class: 'form-error', role: 'alert' });
    const isAudio = kindOf(file.type || '') === 'audio';
    caption.hidden = isAudio; // WhatsApp shows no caption on audio
    remove.addEventListener('click', () => this.clear());
    caption.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        send.click();
      }
    });
    send.addEventListener('click', async () => {
      send.disabled = true;
      remove.disabled = true;
      error.textContent = '';
      progress.hidden = false;
      try {
        const up = await uploadFile(file, (p) => {
          progress.value = Math.round(p * 100);
        });
        progress.value = 100;
        const body = { type: kindOf(up.mime_type), media: { upload_id: up.id } };
        const text = caption.value.trim();
        if (text && body.type !== 'audio') body.caption = text;
        const m = await api.post(`/conversations/${this.conv.id}/messages`, body);
        this.clear();
        this.onSent(m);
      } catch (e) {
        error.textContent = (e && e.message) || 'The file could not be sent.';
        progress.hidden = true;
        send.disabled = false;
        remove.disabled = false;
      }
    });
    replace(this.panel,
      h('div', { class: 'attach-file' }, h('span', { 'aria-hidden': 'true' }, '📄 '), h('strong', {}, file.name), h('span', { class: 'muted small' }, ` ${size(file.size)}`)),
      caption, progress, h('div', { class: 'attach-actions' }, remove, send), error);
    this.panel.hidden = false;
    if (!isAudio) caption.focus();
  }

  clear() {
    this.file = null;
    this.input.value = '';
    replace(this.panel);
    this.panel.hidden = true;
  }

  /** Lets `el` take a dropped file. */
  dropTarget(el) {
    el.addEventListener('dragover', (ev) => {
      if (ev.dataTransfer && [...ev.dataTransfer.types].includes('Files')) {
        ev.preventDefault();
        el.classList.add('dropping');
      }
    });
    el.addEventListener('dragleave', () => el.classList.remove('dropping'));
    el.addEventListener('drop', (ev) => {
      el.classList.remove('dropping');
      const file = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
      if (!file) return;
      ev.preventDefault();
      this.take(file);
    });
  }
}

/** Shows an image (or a video) large, over the page; Escape, the backdrop or Close shut it. */
export function openLightbox(src, alt, video = false) {
  const close = h('button', { type: 'button', class: 'btn ghost lightbox-close', 'aria-label': 'Close preview' }, '×');
  const media = video ? h('video', { src, controls: true, autoplay: true }) : h('img', { src, alt });
  const dlg = h('dialog', { class: 'lightbox', 'aria-label': `Preview: ${alt}` }, close, media);
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('click', (ev) => {
    if (ev.target === dlg) dlg.close();
  });
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  close.focus();
  return dlg;
}
