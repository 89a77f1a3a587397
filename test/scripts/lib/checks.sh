# Check helpers shared by the test scripts in test/scripts/ (sourced, not run).
#
# A script sources this file, runs its checks with check, prints the
# passed and failed counts at the end and exits non-zero when failed > 0.

passed=0
failed=0

# Record and print the outcome of one check: check DESCRIPTION COMMAND...
check() {
	local description=$1
	shift
	if "$@"; then
		echo "ok - $description"
		passed=$((passed + 1))
	else
		echo "not ok - $description"
		failed=$((failed + 1))
	fi
}

# Succeed when the two arguments are equal, else print both.
equals() {
	if [[ $1 == "$2" ]]; then
		return 0
	fi
	echo "#   got:      $1"
	echo "#   expected: $2"
	return 1
}

# Succeed when the two files are byte for byte equal, else print their
# differences.
same_file() {
	diff -u "$1" "$2" | sed 's/^/#   /'
	return "${PIPESTATUS[0]}"
}
