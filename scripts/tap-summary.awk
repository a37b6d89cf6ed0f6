# SPDX-License-Identifier: GPL-2.0
#
# Count TAP results over files given as "GROUP=FILE" pairs on the command
# line (GROUP names the kernel or "host"). A file NAME.tap may have a
# NAME.rc beside it: a non-zero status (other than kselftest's 4, skip)
# with no failing test line counts as one failure, and so does a plan that
# promises more results than were printed (the program died midway).
#
# Prints every failure and skip, then one line:
#   N passed, N failed[, N skipped]
# and exits 1 if anything failed.

function flush(    want, rc, rcfile, line) {
	if (file == "")
		return
	want = plan - seen
	if (want > 0) {
		failed += want
		printf("FAIL %s: %s: %d result(s) missing from its plan\n", group, name, want)
	}
	rcfile = file
	sub(/\.tap$/, ".rc", rcfile)
	rc = ""
	if ((getline line < rcfile) > 0)
		rc = line + 0
	close(rcfile)
	if (rc != "" && rc != 0 && rc != 4 && bad == 0 && want <= 0) {
		failed++
		printf("FAIL %s: %s: exited with status %d%s\n", group, name, rc,
		       rc == 124 ? " (timed out)" : "")
	}
}

BEGIN {
	for (i = 1; i < ARGC; i++) {
		split(ARGV[i], kv, "=")
		group = kv[1]
		file = substr(ARGV[i], length(group) + 2)
		name = file
		sub(/.*\//, "", name)
		sub(/\.tap$/, "", name)
		plan = 0; seen = 0; bad = 0
		while ((getline line < file) > 0) {
			if (line ~ /^1\.\.[0-9]+/) {
				split(line, p, /\.\./)
				plan = p[2] + 0
			} else if (line ~ /^ok /) {
				seen++
				if (line ~ /# *[Ss][Kk][Ii][Pp]/) {
					skipped++
					printf("SKIP %s: %s: %s\n", group, name, line)
				} else {
					passed++
				}
			} else if (line ~ /^not ok /) {
				seen++
				failed++
				bad++
				printf("FAIL %s: %s: %s\n", group, name, line)
			}
		}
		close(file)
		flush()
	}
	line = sprintf("%d passed, %d failed", passed, failed)
	if (skipped)
		line = line sprintf(", %d skipped", skipped)
	print line
	exit failed > 0
}
