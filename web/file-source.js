// SPDX-License-Identifier: GPL-2.0
/*
 * Sources for web/nbd-server.js over what a browser gives a page: a File
 * (read-only) or a File System Access handle (writable). No DOM; node's
 * tests drive them with a Blob and a stand-in handle.
 *
 * Writing through the File System Access API goes through
 * createWritable(), which writes a swap file and replaces the real file
 * only on close(); a File read from the handle is a snapshot that goes
 * stale (reads fail) once the file changes. So writes are kept in memory
 * as 4 KiB pages laid over the snapshot, and a flush (the kernel sends
 * one on sync and before it disconnects) commits them all at once and
 * takes a new snapshot. Until then they live only in this page: closing
 * the tab loses writes that were not flushed, as pulling a disk's power
 * loses its write cache.
 */

const PAGE = 4096;
/* Commit on our own once this much is pending, to bound memory. */
const COMMIT_BYTES = 256 * 1024 * 1024;
/* WRITE_ZEROES is done in pieces of this size. */
const ZERO_CHUNK = 1024 * 1024;

export function fileSource(file) {
	return {
		size: file.size,
		async read(offset, length) {
			const b = await file.slice(offset, offset + length)
				.arrayBuffer();

			return new Uint8Array(b);
		},
	};
}

export class WritableFileSource {
	/* Use WritableFileSource.open(handle). */
	constructor(handle, file, opts = {}) {
		this.handle = handle;
		this.file = file;
		this.size = file.size;
		this.pages = new Map();	/* page index -> Uint8Array */
		this.version = 0;	/* bumped when the snapshot changes */
		this.commitBytes = opts.commitBytes ?? COMMIT_BYTES;
		this.lock = Promise.resolve();
		this.inCommit = null;	/* resolves when a running commit ends */
		this.commits = 0;
	}

	static async open(handle, opts) {
		return new WritableFileSource(handle, await handle.getFile(), opts);
	}

	get pendingBytes() {
		return this.pages.size * PAGE;
	}

	/* Run @fn after every write, zero and flush queued before it. */
	serial(fn) {
		const p = this.lock.then(fn);

		this.lock = p.catch(() => {});
		return p;
	}

	/* Copy pending pages over @out, which holds bytes from @offset. */
	overlay(out, offset) {
		if (!this.pages.size || !out.length)
			return;
		const end = offset + out.length;

		for (let p = Math.floor(offset / PAGE); p * PAGE < end; p++) {
			const pg = this.pages.get(p);

			if (!pg)
				continue;
			const from = Math.max(offset, p * PAGE);
			const to = Math.min(end, p * PAGE + pg.length);

			out.set(pg.subarray(from - p * PAGE, to - p * PAGE),
				from - offset);
		}
	}

	async read(offset, length) {
		for (;;) {
			const v = this.version;
			let out;

			try {
				out = new Uint8Array(await this.file
					.slice(offset, offset + length).arrayBuffer());
			} catch (e) {
				/*
				 * The snapshot went stale under us (a commit
				 * replaced the file): retry on the new one.
				 */
				if (this.inCommit)
					await this.inCommit;
				if (v !== this.version)
					continue;
				throw e;
			}
			/*
			 * A commit in between cleared the pages this
			 * snapshot needed: read the new one.
			 */
			if (v !== this.version)
				continue;
			this.overlay(out, offset);
			return out;
		}
	}

	/* The page @p as it is now (pending or from the file), for a patch. */
	async page(p) {
		let pg = this.pages.get(p);

		if (pg)
			return pg;
		const start = p * PAGE;
		const end = Math.min(this.size, start + PAGE);

		pg = new Uint8Array(await this.file.slice(start, end).arrayBuffer());
		this.pages.set(p, pg);
		return pg;
	}

	async writeLocked(offset, data) {
		const end = offset + data.length;

		for (let p = Math.floor(offset / PAGE); p * PAGE < end; p++) {
			const start = p * PAGE;
			const len = Math.min(PAGE, this.size - start);
			const from = Math.max(offset, start);
			const to = Math.min(end, start + len);
			let pg;

			if (from === start && to === start + len) {
				pg = this.pages.get(p);
				if (!pg) {
					pg = new Uint8Array(len);
					this.pages.set(p, pg);
				}
			} else {
				pg = await this.page(p);
			}
			pg.set(data.subarray(from - offset, to - offset),
			       from - start);
		}
		if (this.pendingBytes >= this.commitBytes)
			await this.commit();
	}

	write(offset, data) {
		/* Our copy: the caller's buffer may be reused. */
		const copy = data.slice();

		return this.serial(() => this.writeLocked(offset, copy));
	}

	writeZeroes(offset, length) {
		return this.serial(async () => {
			const zero = new Uint8Array(Math.min(length, ZERO_CHUNK));

			for (let done = 0; done < length; done += zero.length) {
				const n = Math.min(zero.length, length - done);

				await this.writeLocked(offset + done,
						       zero.subarray(0, n));
			}
		});
	}

	/*
	 * TRIM only says the remote machine no longer needs the range, and
	 * NBD leaves its contents undefined until written again. A file
	 * picked in a browser cannot have holes punched, and zeroing the
	 * range would cost the very writes a discard is meant to save (mkfs
	 * discards the whole device first), so the file keeps its bytes.
	 * Offering it still lets discards (mkfs, fstrim, blkdiscard) succeed
	 * at once instead of failing.
	 */
	async trim() {}

	flush() {
		return this.serial(() => this.commit());
	}

	/* Write the pending pages, in runs, into the file and re-snapshot. */
	async commit() {
		if (!this.pages.size)
			return;
		let done;

		this.inCommit = new Promise((resolve) => {
			done = resolve;
		});
		try {
			await this.commitPages();
		} finally {
			this.inCommit = null;
			done();
		}
	}

	async commitPages() {
		const idx = [...this.pages.keys()].sort((a, b) => a - b);
		const w = await this.handle.createWritable({ keepExistingData: true });

		try {
			for (let i = 0; i < idx.length;) {
				let j = i + 1;

				while (j < idx.length && idx[j] === idx[j - 1] + 1 &&
				       j - i < 256)
					j++;
				const run = new Uint8Array(idx.slice(i, j).reduce(
					(n, p) => n + this.pages.get(p).length, 0));
				let o = 0;

				for (let k = i; k < j; k++) {
					const pg = this.pages.get(idx[k]);

					run.set(pg, o);
					o += pg.length;
				}
				await w.write({ type: 'write',
						position: idx[i] * PAGE, data: run });
				i = j;
			}
			await w.close();
		} catch (e) {
			await w.abort?.().catch(() => {});
			throw e;
		}
		const file = await this.handle.getFile();

		if (file.size !== this.size)
			throw new Error(`the file changed size (${this.size} to ${file.size} bytes) while it was served`);
		/* All three together, so a read sees the old pair or the new. */
		this.file = file;
		this.pages = new Map();
		this.version++;
		this.commits++;
	}
}
