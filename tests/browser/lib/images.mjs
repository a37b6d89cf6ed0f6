// SPDX-License-Identifier: GPL-2.0
//
// The disk images the browser tests serve, and what the VM checks them
// against.

import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// Write FILES ({ relative path: data }) under DIR, and OUT/NAME.files (the
// sorted list, ./path) and OUT/NAME.sha256 (sha256sum -c input) for the
// VM's check-files.
export function writeTree(out, name, dir, files) {
	fs.rmSync(dir, { recursive: true, force: true });
	for (const [rel, data] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
		fs.writeFileSync(path.join(dir, rel), data);
	}
	const rels = Object.keys(files).map((r) => `./${r}`).sort();
	fs.writeFileSync(path.join(out, `${name}.files`), rels.join('\n') + '\n');
	fs.writeFileSync(path.join(out, `${name}.sha256`), rels.map((r) =>
		`${sha256(fs.readFileSync(path.join(dir, r)))}  ${r}`).join('\n') + '\n');
}

// An ext4 image with FILES (mkfs.ext4 -d: no root needed), with the
// list and SHA-256 of its files beside it (writeTree).
export function makeExt4(out, name, files, sizeMiB) {
	const dir = path.join(out, `${name}.d`);
	const img = path.join(out, `${name}.img`);
	writeTree(out, name, dir, files);
	fs.rmSync(img, { force: true });
	execFileSync('mkfs.ext4', ['-q', '-F', '-L', name, '-d', dir, img, `${sizeMiB}M`],
		{ stdio: ['ignore', 'pipe', 'pipe'] });
	return img;
}

// A few files of every kind of size: empty, tiny, odd, several MiB.
export function sampleFiles(tag) {
	const files = {
		'hello.txt': `served by a browser page (${tag})\n`,
		'empty': '',
		'a/b/c/deep.bin': crypto.randomBytes(700 * 1024 + 3),
		'photos/one.raw': crypto.randomBytes(3 << 20),
		'photos/two.raw': crypto.randomBytes((1 << 20) + 4097),
	};
	for (let i = 0; i < 20; i++)
		files[`many/file-${i}.txt`] = crypto.randomBytes(100 + 517 * i).toString('base64');
	return files;
}
