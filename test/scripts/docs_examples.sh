#!/bin/bash
# The psql examples in docs/reference.md are the output of a regression test.
#
#   bash test/scripts/docs_examples.sh            check, print ok/not ok lines
#   bash test/scripts/docs_examples.sh --update   rewrite the reference's
#                                                 examples from the expected
#                                                 output
#
# sql/19_reference.sql holds every example between a line
# "-- example: NAME" and a line "-- end of example".  pg_regress runs it and
# compares the result with expected/19_reference.out, so that file records
# what the code does.  In the reference, an example is a ```psql block right
# after a line "<!-- example: NAME -->".  This script checks that:
#   - every ```psql block in the reference carries such a name;
#   - each named block is exactly the text between the markers in the
#     expected output: the statements as psql echoes them and their output;
#   - every example of the test is shown in the reference;
#   - the test file and its expected output name the same examples in the
#     same order.
# Trailing spaces are ignored when comparing, because psql pads its table
# cells with them and editors strip them from Markdown.
#
# To change an example: edit sql/19_reference.sql, run the regression suite,
# copy results/19_reference.out to expected/19_reference.out once the output
# is right, then run this script with --update.
#
# Needs no server; scripts/test.sh runs it with the other test scripts.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
reference=$repo_root/docs/reference.md
test_sql=$repo_root/sql/19_reference.sql
test_expected=$repo_root/expected/19_reference.out

update=false
if [[ ${1:-} == --update ]]; then
	update=true
elif [[ $# -gt 0 ]]; then
	echo "usage: $0 [--update]" >&2
	exit 2
fi

work_dir=$(mktemp -d /tmp/haematite-docs.XXXXXX)
trap 'rm -rf "$work_dir"' EXIT
mkdir "$work_dir/expected" "$work_dir/reference"

passed=0
failed=0

pass() {
	echo "ok - $1"
	passed=$((passed + 1))
}

fail() {
	echo "not ok - $1"
	failed=$((failed + 1))
}

for file in "$reference" "$test_sql" "$test_expected"; do
	if [[ ! -f $file ]]; then
		echo "not ok - $file exists"
		exit 1
	fi
done

# Write each example of a psql transcript (the test file or its expected
# output) to DIR/NAME, trailing spaces and trailing blank lines removed, and
# print the names in order.  An example without its end marker, a nested
# example or a name used twice is an error.
extract_test_examples() {
	local transcript=$1 dir=$2

	awk -v dir="$dir" '
		function finish() {
			for (i = 1; i <= count; i++)
				print lines[i] > (dir "/" name)
			close(dir "/" name)
			name = ""
		}
		/^-- example: / {
			if (name != "") {
				print FILENAME ": example " name " has no end marker" > "/dev/stderr"
				exit 1
			}
			name = substr($0, 13)
			if (name !~ /^[a-z0-9-]+$/ || (name in seen)) {
				print FILENAME ": bad or repeated example name: " name > "/dev/stderr"
				exit 1
			}
			seen[name] = 1
			print name
			count = 0
			next
		}
		/^-- end of example$/ {
			if (name == "") {
				print FILENAME ": end marker without an example" > "/dev/stderr"
				exit 1
			}
			while (count > 0 && lines[count] == "")
				count--
			finish()
			next
		}
		name != "" {
			line = $0
			sub(/[ \t]+$/, "", line)
			lines[++count] = line
		}
		END {
			if (name != "") {
				print FILENAME ": example " name " has no end marker" > "/dev/stderr"
				exit 1
			}
		}
	' "$transcript"
}

# Write each named ```psql block of the reference to DIR/NAME.N (N counts
# the blocks of one name) and print "NAME.N" per block.  A ```psql block
# without a name right before it is skipped and makes the function fail.
extract_reference_examples() {
	local dir=$1

	awk -v dir="$dir" '
		/^<!-- example: [a-z0-9-]+ -->$/ {
			pending = substr($0, 15, length($0) - 18)
			next
		}
		/^```psql$/ {
			if (pending == "") {
				print FILENAME ":" FNR ": ```psql block without an example name" > "/dev/stderr"
				unnamed = 1
				skipping = 1
				next
			}
			name = pending "." (++uses[pending])
			pending = ""
			inside = 1
			printf "" > (dir "/" name)
			print name
			next
		}
		skipping {
			if ($0 == "```")
				skipping = 0
			next
		}
		inside && /^```$/ {
			close(dir "/" name)
			inside = 0
			next
		}
		inside {
			line = $0
			sub(/[ \t]+$/, "", line)
			print line > (dir "/" name)
			next
		}
		{ pending = "" }
		END {
			if (inside || skipping) {
				print FILENAME ": the last ```psql block is not closed" > "/dev/stderr"
				exit 1
			}
			if (unnamed)
				exit 1
		}
	' "$reference"
}

# The test file and its expected output list the same examples.
mkdir "$work_dir/sql"
if ! sql_names=$(extract_test_examples "$test_sql" "$work_dir/sql"); then
	fail "sql/19_reference.sql has well-formed example markers"
	exit 1
fi
if ! expected_names=$(extract_test_examples "$test_expected" "$work_dir/expected"); then
	fail "expected/19_reference.out has well-formed example markers"
	exit 1
fi
if [[ $sql_names == "$expected_names" ]]; then
	pass "sql/19_reference.sql and expected/19_reference.out name the same examples"
else
	fail "sql/19_reference.sql and expected/19_reference.out name the same examples"
	diff <(echo "$sql_names") <(echo "$expected_names") | sed 's/^/#   /' || true
fi

if $update; then
	# Replace the body of every named ```psql block with the expected output.
	updated=$work_dir/reference.md
	awk -v dir="$work_dir/expected" '
		/^<!-- example: [a-z0-9-]+ -->$/ {
			pending = substr($0, 15, length($0) - 18)
			print
			next
		}
		/^```psql$/ && pending != "" {
			print
			file = dir "/" pending
			while ((getline line < file) > 0)
				print line
			close(file)
			pending = ""
			skipping = 1
			next
		}
		skipping && /^```$/ {
			skipping = 0
			print
			next
		}
		skipping { next }
		{ pending = ""; print }
	' "$reference" >"$updated"
	for name in $(extract_reference_examples "$work_dir/reference" 2>/dev/null |
		sed 's/\.[0-9]*$//' | sort -u); do
		if [[ ! -f $work_dir/expected/$name ]]; then
			echo "warning: docs/reference.md shows example $name, which the test does not run" >&2
		fi
	done
	cp "$updated" "$reference"
	echo "Rewrote the examples in $reference from $test_expected."
	exit 0
fi

# Each block of the reference against the expected output.
if ! reference_blocks=$(extract_reference_examples "$work_dir/reference"); then
	fail "every psql block in docs/reference.md is named"
	reference_blocks=$(ls "$work_dir/reference")
fi
for block in $reference_blocks; do
	name=${block%.*}
	if [[ ! -f $work_dir/expected/$name ]]; then
		fail "example $name in docs/reference.md is run by sql/19_reference.sql"
		continue
	fi
	if diff -u --label "expected/19_reference.out ($name)" \
		--label "docs/reference.md ($name)" \
		"$work_dir/expected/$name" "$work_dir/reference/$block" >"$work_dir/diff"; then
		pass "example $name in docs/reference.md matches the expected output"
	else
		fail "example $name in docs/reference.md matches the expected output"
		sed 's/^/#   /' "$work_dir/diff"
	fi
done

# Every example of the test is shown.
for name in $expected_names; do
	if [[ ! -f $work_dir/reference/$name.1 ]]; then
		fail "example $name of sql/19_reference.sql is shown in docs/reference.md"
	fi
done

echo "$passed passed, $failed failed"
if ((failed > 0)); then
	echo "Run test/scripts/docs_examples.sh --update after changing expected/19_reference.out." >&2
	exit 1
fi
