# remoteenv upload, last part: run as `sh -s -- TMP DEST SIZE SHA256 MODE` after TMP was written.
# TMP replaces DEST only when it holds exactly SIZE bytes with that SHA-256: a write that failed on
# the host (a full disk, a quota) leaves DEST as it was. TMP is removed on every failure.
# Output on failure: one line saying why (exit 1).
set -eu
tmp=$1 dest=$2 size=$3 sum=$4 mode=$5

fail() {
    rm -f "$tmp"
    printf '%s\n' "$1"
    exit 1
}
free_here() {
    # Free KiB in the folder's filesystem, as POSIX df prints it.
    df -Pk "${dest%/*}/" 2>/dev/null | awk 'NR == 2 { print $4 }'
}

[ -f "$tmp" ] || fail "the upload's temporary file $tmp is missing"
have=$(wc -c < "$tmp" | tr -d ' ')
if [ "$have" != "$size" ]; then
    free=$(free_here)
    fail "only $have of $size bytes reached the host (free space there: ${free:-unknown} KiB); $dest left unchanged"
fi
got=$(sha256_of "$tmp")
if [ -n "$got" ] && [ "$got" != "$sum" ]; then
    fail "the uploaded bytes differ from the local ones (SHA-256 mismatch); $dest left unchanged"
fi
chmod "$mode" "$tmp" || fail "cannot set mode $mode on $tmp"
mv -f "$tmp" "$dest" || fail "cannot rename $tmp over $dest"
