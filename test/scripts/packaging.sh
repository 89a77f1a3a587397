#!/bin/bash
# Release packaging: make dist writes haematite-<version>.zip with every file
# under haematite-<version>/, the control file, the SQL scripts, src/ and a
# META.json that is valid JSON and carries the control file's default_version.
# make dist also fails on a work tree with uncommitted changes.
#
# make dist archives HEAD, so this script runs it on a copy of the work tree
# (tracked files and untracked ones that .gitignore does not exclude)
# committed to a new git repository under /tmp.  It tests the files as they
# are now, committed or not, and leaves the checkout alone.  Needs no server;
# scripts/test.sh runs it with the other test scripts.  Installs git and
# python3 with apt-get when they are missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
readonly PYTHON=/usr/bin/python3

source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# Install the Debian packages that provide the given commands, if missing.
require_commands() {
	local missing=() command package

	for command in "$@"; do
		if ! command -v "$command" >/dev/null 2>&1; then
			case $command in
			/usr/bin/python3) package=python3 ;;
			*) package=$command ;;
			esac
			missing+=("$package")
		fi
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "missing packages: ${missing[*]}; install them as root with apt-get" >&2
		return 1
	fi
	echo "Installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

require_commands git "$PYTHON" make sed

work_dir=$(mktemp -d /tmp/haematite-packaging.XXXXXX)
trap 'rm -rf "$work_dir"' EXIT
copy=$work_dir/haematite

# The copy: every file git would see in the checkout, committed in a new
# repository.  Files deleted in the work tree but still tracked are left out.
mkdir "$copy"
(
	cd "$repo_root"
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' file; do
			if [[ -f $file ]]; then
				printf '%s\0' "$file"
			fi
		done |
		xargs -0 cp --parents -t "$copy"
)
git -C "$copy" init -q
git -C "$copy" add -A
git -C "$copy" -c user.name=packaging-test -c user.email=packaging-test@localhost \
	commit -q -m "work tree copy for the packaging test"

# The version, read independently of the Makefile.
version=$(sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" \
	"$copy/haematite.control")
check "haematite.control sets default_version" test -n "$version"
prefix=haematite-$version
archive=$copy/$prefix.zip

check "make dist succeeds on a committed tree" \
	make -s -C "$copy" PG_CONFIG="$PG_CONFIG" dist
check "make dist writes $prefix.zip" test -f "$archive"
if [[ ! -f $archive ]]; then
	echo "$passed passed, $failed failed"
	exit 1
fi

# List the archive's entries, one per line.
"$PYTHON" -m zipfile -l "$archive" | tail -n +2 | awk '{print $1}' >"$work_dir/entries"

every_entry_has_prefix() {
	! grep -v -q "^$prefix/" "$work_dir/entries"
}

archive_has() {
	grep -q -x -F "$prefix/$1" "$work_dir/entries"
}

# Every file of the given kind in the copy is in the archive.
archive_has_all() {
	local file found=0

	while IFS= read -r file; do
		found=1
		if ! archive_has "$file"; then
			echo "  $file is missing from the archive" >&2
			return 1
		fi
	done < <(cd "$copy" && git ls-files -- "$@")
	((found == 1))
}

check "every entry is under $prefix/" every_entry_has_prefix
check "the archive holds haematite.control" archive_has haematite.control
check "the archive holds every haematite--*.sql script" archive_has_all 'haematite--*.sql'
check "the archive holds haematite--$version.sql or an upgrade script to $version" \
	bash -c "grep -q -x -E '$prefix/haematite--([0-9.]+--)?${version//./\\.}\\.sql' '$work_dir/entries'"
check "the archive holds every file of src/" archive_has_all 'src/*'
check "the archive holds the Makefile" archive_has Makefile
check "the archive holds docs/reference.md" archive_has docs/reference.md
check "the archive holds META.json" archive_has META.json

# META.json: valid JSON whose versions are the control file's.
"$PYTHON" - "$archive" "$prefix/META.json" >"$work_dir/META.json" <<'EOF'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as archive:
    sys.stdout.write(archive.read(sys.argv[2]).decode("utf-8"))
EOF
check "META.json is valid JSON" "$PYTHON" -m json.tool "$work_dir/META.json" /dev/null

meta_field() {
	"$PYTHON" -c '
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = value[key]
print(value)' "$work_dir/META.json" "$@" 2>/dev/null
}

check "META.json version is $version" test "$(meta_field version)" = "$version"
check "META.json provides haematite $version" \
	test "$(meta_field provides haematite version)" = "$version"
check "META.json follows meta-spec 1.0.0" test "$(meta_field meta-spec version)" = "1.0.0"
check "META.json names no placeholder left from META.json.in" \
	bash -c "! grep -q '@[A-Z]*@' '$work_dir/META.json'"
check "the archived control file is the work tree's" \
	cmp -s "$repo_root/haematite.control" \
	<("$PYTHON" -c 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' \
		"$archive" "$prefix/haematite.control")

# A tracked file changed after the last commit would not be in the archive,
# so make dist must fail.
rm -f "$archive"
echo "# changed after the commit" >>"$copy/haematite.control"
check "make dist rejects uncommitted changes" \
	bash -c "! make -s -C '$copy' PG_CONFIG='$PG_CONFIG' dist 2>/dev/null"
check "make dist writes no archive then" test ! -e "$archive"

echo "$passed passed, $failed failed"
if ((failed > 0)); then
	exit 1
fi
