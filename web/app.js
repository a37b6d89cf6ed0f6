// SPDX-License-Identifier: GPL-2.0
/*
 * The page: pick an image, choose a slot, Serve. The NBD server
 * (nbd-server.js), the file sources (file-source.js) and the connection
 * with its reconnecting (serve-session.js) have no DOM; this file only
 * wires them to the form and shows what they do.
 */
import { fileSource, WritableFileSource } from './file-source.js';
import { ServeSession, clean } from './serve-session.js';

const $ = (id) => document.getElementById(id);
const ui = {
	form: $('form'), drop: $('drop'), file: $('file'), pick: $('pick'),
	fileInfo: $('file-info'), slot: $('slot'), slotInfo: $('slot-info'),
	token: $('token'), tokenInfo: $('token-info'),
	writable: $('writable'), writableInfo: $('writable-info'),
	serve: $('serve'), stop: $('stop'), state: $('state'),
	reason: $('reason'), bytes: $('bytes'), bytesHuman: $('bytes-human'),
	requests: $('requests'), throughput: $('throughput'),
};

const TOKEN_KEY = 'nbdws-token';
const canWrite = typeof window.showOpenFilePicker === 'function';
/* A token goes as the subprotocol only if it is a valid one (RFC 6455). */
const SUBPROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

let picked = null;	/* { file, handle } */
let slots = [];		/* from GET /slots */
let session = null;
let source = null;
let samples = [];	/* [time ms, bytes] for the throughput */
let starting = false;	/* Serve pressed, the session not made yet */

function human(n) {
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0;

	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return `${i ? n.toFixed(n < 10 ? 2 : 1) : n} ${units[i]}`;
}

/* ---- state ---- */

function active() {
	return session && ['connecting', 'serving', 'reconnecting']
		.includes(session.state);
}

function showState(state, reason) {
	ui.state.textContent = state;
	document.body.dataset.state = state;
	ui.reason.textContent = reason ?? '';
	const busy = ['connecting', 'serving', 'reconnecting'].includes(state);

	ui.stop.disabled = !busy;
	ui.serve.disabled = busy || !picked;
	for (const el of [ui.file, ui.slot, ui.token])
		el.disabled = busy;
	ui.pick.disabled = busy;
	ui.writable.disabled = busy || !canWrite;
	ui.drop.classList.toggle('locked', busy);
}

function updateCounters() {
	const st = session ? session.stats : { bytes: 0, requests: 0 };
	const now = performance.now();

	ui.bytes.textContent = String(st.bytes);
	ui.bytesHuman.textContent = st.bytes ? `(${human(st.bytes)})` : '';
	ui.requests.textContent = String(st.requests);
	samples.push([now, st.bytes]);
	/* Two seconds of samples: steady, yet quick to fall to zero. */
	while (samples.length > 2 && now - samples[0][0] > 2000)
		samples.shift();
	if (!active() || samples.length < 2) {
		ui.throughput.textContent = '–';
		return;
	}
	const [t0, b0] = samples[0];
	const rate = (st.bytes - b0) / ((now - t0) / 1000);

	ui.throughput.textContent = `${human(Math.max(0, rate))}/s`;
}

/* ---- the file ---- */

function setFile(file, handle = null) {
	picked = file ? { file, handle } : null;
	if (!file) {
		ui.fileInfo.textContent = 'No file chosen.';
	} else {
		let text = `${clean(file.name)}: ${human(file.size)} (${file.size} bytes).`;
		const tail = file.size % 512;

		if (!file.size)
			text += ' It is empty: there is nothing to serve.';
		else if (tail)
			text += ` Its size is not a multiple of 512 bytes: the remote device ends at the last whole sector, and the last ${tail} bytes are not on it.`;
		ui.fileInfo.textContent = text;
	}
	if (!handle && ui.writable.checked) {
		ui.writable.checked = false;
		writableHint();
	}
	showState(session ? session.state : 'idle', ui.reason.textContent);
	if (picked && !picked.file.size)
		ui.serve.disabled = true;
}

async function pickWithHandle() {
	try {
		const [handle] = await window.showOpenFilePicker({
			multiple: false,
		});

		setFile(await handle.getFile(), handle);
		return handle;
	} catch (e) {
		if (e.name !== 'AbortError')
			ui.reason.textContent = `Could not open the file: ${clean(e.message)}`;
		return null;
	}
}

async function fromDrop(ev) {
	ev.preventDefault();
	ui.drop.classList.remove('over');
	if (active())
		return;
	const item = [...ev.dataTransfer.items].find((i) => i.kind === 'file');

	if (!item)
		return;
	/* Chromium gives a handle for dropped files: writable later. */
	let handle = null;

	if (canWrite && typeof item.getAsFileSystemHandle === 'function') {
		const file = item.getAsFile();

		handle = await item.getAsFileSystemHandle().catch(() => null);
		if (handle?.kind === 'file') {
			setFile(await handle.getFile(), handle);
			return;
		}
		setFile(file);
		return;
	}
	setFile(item.getAsFile());
}

/* ---- the writable switch ---- */

function writableHint(extra = '') {
	let t;

	if (!canWrite)
		t = 'Read-only: this browser cannot write to local files (it has no File System Access API; Chromium-based browsers have it). The image is served read-only.';
	else if (ui.writable.checked)
		t = 'Writes reach the file when the remote machine flushes (sync, unmount) and when you press Stop; until then they are kept in this page.';
	else
		t = 'Read-only. Switch on to let the remote machine write to the file.';
	const slot = slots.find((s) => s.name === ui.slot.value);

	if (ui.writable.checked && slot?.read_only)
		t += ' This slot is read-only at the relay: the device will be read-only anyway.';
	ui.writableInfo.textContent = extra ? `${extra} ${t}` : t;
}

async function onWritable() {
	if (!ui.writable.checked) {
		writableHint();
		return;
	}
	let handle = picked?.handle;

	if (!handle) {
		handle = await pickWithHandle();
		if (!handle) {
			ui.writable.checked = false;
			writableHint();
			return;
		}
	}
	let granted = false;

	try {
		granted = await handle.requestPermission({ mode: 'readwrite' }) ===
			'granted';
	} catch (e) {
		/* The picker may have used up the click: ask for another. */
		ui.writable.checked = false;
		writableHint('Click "Writable" again to allow writing.');
		return;
	}
	ui.writable.checked = granted;
	writableHint(granted ? '' : 'Writing was not allowed.');
}

/* ---- slots and token ---- */

function token() {
	return ui.token.value.trim();
}

function authHeaders() {
	const t = token();

	return t ? { Authorization: `Bearer ${t}` } : {};
}

/*
 * GET /slots: fills the list, and tells a refused token before any
 * WebSocket is tried (a refused upgrade shows in a browser only as 1006).
 * Returns null when fine, else the reason.
 */
async function loadSlots() {
	let res;

	try {
		res = await fetch('/slots', { headers: authHeaders(),
					      cache: 'no-store' });
	} catch (e) {
		ui.slotInfo.textContent = 'The relay cannot be reached to list its slots.';
		return null;
	}
	if (res.status === 401 || res.status === 403) {
		const body = clean((await res.text().catch(() => '')).trim());

		ui.slotInfo.textContent = 'Enter a valid token to see the slots.';
		return `the relay refused the token (HTTP ${res.status}${body ? `: ${body}` : ''})`;
	}
	if (!res.ok) {
		ui.slotInfo.textContent = `The relay did not list its slots (HTTP ${res.status}).`;
		return null;
	}
	try {
		slots = await res.json();
	} catch {
		slots = [];
	}
	if (!Array.isArray(slots))
		slots = [];
	const keep = ui.slot.value;

	ui.slot.replaceChildren();
	for (const s of slots) {
		const o = document.createElement('option');
		const desc = s.metadata && typeof s.metadata.description === 'string' ?
			` — ${clean(s.metadata.description, 60)}` : '';

		o.value = String(s.name);
		o.textContent = `${clean(s.name, 64)}${desc}${s.read_only ? ' (read-only)' : ''}${s.state && s.state !== 'idle' ? ` [${clean(s.state, 20)}]` : ''}`;
		if (keep ? s.name === keep : s.default)
			o.selected = true;
		ui.slot.append(o);
	}
	if (!slots.length) {
		const o = document.createElement('option');

		o.value = '';
		o.textContent = 'default slot';
		ui.slot.append(o);
	}
	slotHint();
	return null;
}

function slotHint() {
	const s = slots.find((x) => x.name === ui.slot.value);

	if (!s) {
		ui.slotInfo.textContent = slots.length ? '' :
			'The relay listed no slots: the default one is used.';
		return;
	}
	const busy = s.state && !['idle', 'held'].includes(s.state);

	ui.slotInfo.textContent = busy ?
		`This slot is ${clean(s.state, 20)}: another client is using it.` :
		s.state === 'held' ? 'This slot holds a device waiting for its client to come back.' :
		'';
	writableHint();
}

let slotTimer = null;

function onToken() {
	sessionStorage.setItem(TOKEN_KEY, token());
	clearTimeout(slotTimer);
	slotTimer = setTimeout(async () => {
		const refused = await loadSlots();

		ui.tokenInfo.textContent = refused ?
			`The relay refused this token.` :
			'Leave empty if the relay needs none.';
	}, 400);
}

/* ?token= in the address: take it, then drop it from the address bar. */
function tokenFromUrl() {
	const url = new URL(location.href);
	const t = url.searchParams.get('token');

	if (t !== null) {
		url.searchParams.delete('token');
		history.replaceState(history.state, '', url.pathname + url.search + url.hash);
		sessionStorage.setItem(TOKEN_KEY, t);
		return t;
	}
	return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function wsTarget(slot) {
	const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
	const t = token();
	let url = `${scheme}//${location.host}/${encodeURIComponent(slot)}`;
	let protocols = [];

	if (t && SUBPROTOCOL.test(t))
		protocols = [t];
	else if (t)
		url += `?token=${encodeURIComponent(t)}`;
	return { url, protocols };
}

/* ---- Serve and Stop ---- */

async function serve(ev) {
	ev.preventDefault();
	if (active() || !picked || starting)
		return;
	starting = true;
	try {
		await start();
	} finally {
		starting = false;
	}
}

async function start() {
	sessionStorage.setItem(TOKEN_KEY, token());
	showState('connecting', '');
	const refused = await loadSlots();

	if (refused) {
		showState('stopped', refused);
		return;
	}
	const slotName = ui.slot.value;
	const slot = slots.find((s) => s.name === slotName);
	const { file, handle } = picked;

	try {
		source = ui.writable.checked && handle ?
			await WritableFileSource.open(handle) : fileSource(file);
	} catch (e) {
		showState('stopped', `cannot open the file: ${clean(e.message)}`);
		return;
	}
	const { url, protocols } = wsTarget(slotName);

	samples = [];
	session = new ServeSession({
		url, protocols, source,
		name: file.name,
		description: 'served from a browser page',
		hold: Number.isFinite(slot?.hold) ? slot.hold : 60,
		onState: (state, reason) => {
			showState(state, reason);
			if (state === 'stopped')
				finishWrites();
		},
		onSourceError: (e) => console.warn('nbdws: reading the file failed:', e),
	});
	session.start();
}

/* Commit what the remote machine wrote and did not flush. */
async function finishWrites() {
	const src = source;

	if (!(src instanceof WritableFileSource) || !src.pendingBytes)
		return;
	const n = src.pendingBytes;

	try {
		await src.flush();
		ui.reason.textContent += ` (${human(n)} of writes saved to the file)`;
	} catch (e) {
		ui.reason.textContent += ` (saving ${human(n)} of writes failed: ${clean(e.message)})`;
	}
}

function stop() {
	session?.stop();
}

/* ---- wiring ---- */

function init() {
	ui.token.value = tokenFromUrl();
	if (canWrite) {
		ui.pick.hidden = false;
		ui.writable.disabled = false;
	}
	writableHint();
	ui.file.addEventListener('change', () => setFile(ui.file.files[0] ?? null));
	ui.pick.addEventListener('click', pickWithHandle);
	ui.drop.addEventListener('dragover', (ev) => {
		ev.preventDefault();
		if (!active())
			ui.drop.classList.add('over');
	});
	ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
	ui.drop.addEventListener('drop', fromDrop);
	ui.writable.addEventListener('change', onWritable);
	ui.slot.addEventListener('change', slotHint);
	ui.token.addEventListener('input', onToken);
	ui.form.addEventListener('submit', serve);
	ui.stop.addEventListener('click', stop);
	/* Anything dropped outside the zone must not navigate away. */
	window.addEventListener('dragover', (ev) => ev.preventDefault());
	window.addEventListener('drop', (ev) => ev.preventDefault());
	/* Unflushed writes live only in this page: ask before losing them. */
	window.addEventListener('beforeunload', (ev) => {
		if (source instanceof WritableFileSource && source.pendingBytes) {
			ev.preventDefault();
			ev.returnValue = '';
		}
	});
	setInterval(updateCounters, 250);
	showState('idle', '');
	loadSlots().then((refused) => {
		if (refused)
			ui.tokenInfo.textContent = 'The relay refused this token.';
	});
}

init();
