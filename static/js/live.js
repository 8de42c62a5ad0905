// The live connection: one websocket per page to /api/v1/live, resumed with the last cursor
// after any drop so no event is missed. Listeners get every event frame, plus a synthetic
// {type: 'resync'} when they must refetch (the server said "reset", or there is no cursor to
// resume from).

const PING_EVERY = 25000;
const PONG_WITHIN = 10000;
const MAX_BACKOFF = 10000;

export class Live {
  constructor() {
    this.cursor = null;
    this.ws = null;
    this.state = 'connecting'; // connecting | live | reconnecting | stopped
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.attempt = 0;
    this.held = false; // test hook: stay offline until resume()
    this.timer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.everOpened = false;
    this.onUnauthorized = () => {};
    // 'available' | 'away', chosen in the header; sent on every (re)connection.
    this.presence = localStorage.getItem('sb.presence') === 'away' ? 'away' : 'available';
    window.addEventListener('online', () => this.retryNow());
  }

  /** Connects; resolves once the socket is open (or after 3 s, whatever happens). */
  start() {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.statusListeners.delete(wait);
        resolve();
      };
      const wait = (s) => s === 'live' && done();
      const t = setTimeout(done, 3000);
      this.statusListeners.add(wait);
      this.connect();
    });
  }

  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.state);
    return () => this.statusListeners.delete(fn);
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    for (const fn of [...this.statusListeners]) fn(s);
  }

  emit(event) {
    for (const fn of [...this.listeners]) {
      try {
        fn(event);
      } catch (e) {
        console.error('live listener failed', e);
      }
    }
  }

  connect() {
    if (this.state === 'stopped' || this.held) return;
    clearTimeout(this.timer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const resumeFrom = this.cursor;
    const url = `${proto}//${location.host}/api/v1/live${resumeFrom ? `?after=${encodeURIComponent(resumeFrom)}` : ''}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      const first = !this.everOpened;
      this.everOpened = true;
      this.setState('live');
      this.startHeartbeat();
      if (this.presence === 'away') this.sendPresence();
      // Without a cursor the server starts at "now": whatever happened while we were away
      // must be refetched.
      if (!first && !resumeFrom) this.emit({ type: 'resync' });
    };
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      let e;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      if (e.type === 'pong') {
        clearTimeout(this.pongTimer);
        return;
      }
      if (e.type === 'reset') {
        this.cursor = null;
        this.emit({ type: 'resync' });
        return;
      }
      if (e.cursor) this.cursor = e.cursor;
      this.emit(e);
    };
    ws.onclose = (c) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopHeartbeat();
      if (c.code === 4401) {
        this.stop();
        this.onUnauthorized();
        return;
      }
      if (this.state !== 'stopped') {
        this.setState('reconnecting');
        this.scheduleReconnect();
      }
    };
    ws.onerror = () => {}; // onclose follows
  }

  scheduleReconnect() {
    if (this.state === 'stopped' || this.held) return;
    clearTimeout(this.timer);
    const delay = Math.min(MAX_BACKOFF, 500 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.state === 'reconnecting' && !this.held) {
      this.attempt = 0;
      this.connect();
    }
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.pingTimer = setInterval(() => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      this.ws.send('{"type":"ping"}');
      clearTimeout(this.pongTimer);
      const ws = this.ws;
      this.pongTimer = setTimeout(() => ws.close(), PONG_WITHIN);
    }, PING_EVERY);
  }

  /** Declares the member available or away (the contract's presence frame). */
  setPresence(status) {
    this.presence = status === 'away' ? 'away' : 'available';
    localStorage.setItem('sb.presence', this.presence);
    this.sendPresence();
  }

  sendPresence() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'presence', status: this.presence }));
  }

  stopHeartbeat() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  /** Drops the socket (as a network loss would) and stays offline until resume(). */
  drop() {
    this.held = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.stopHeartbeat();
    if (ws) ws.close();
    if (this.state !== 'stopped') this.setState('reconnecting');
  }

  resume() {
    this.held = false;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.setState('stopped');
    clearTimeout(this.timer);
    this.stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
  }
}
