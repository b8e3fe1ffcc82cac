# remoteenv keys setup: run as `sh -s -- KEYLINE` as the login user. Appends KEYLINE to
# ~/.ssh/authorized_keys unless a line there already holds the same key (its base64 field), creating
# ~/.ssh 0700 and the file 0600 when missing. No other line is touched, and an existing folder or
# file keeps its mode. Prints `status<TAB>added` or `status<TAB>present`.
set -eu
key=$1
blob=$(printf '%s\n' "$key" | awk '{ print $2 }')
[ -n "$blob" ] || { echo "not a public key line"; exit 2; }
dir=$HOME/.ssh
file=$dir/authorized_keys
umask 077
[ -d "$dir" ] || mkdir -m 700 "$dir"
if [ ! -e "$file" ]; then
    : >"$file"
    chmod 600 "$file"
fi
# A line holds the key when one of its fields is the key's base64 (options and comments may differ).
if awk -v b="$blob" '{ for (i = 1; i <= NF; i++) if ($i == b) found = 1 } END { exit !found }' "$file"; then
    printf 'status\tpresent\n'
    exit 0
fi
# A last line without its newline would run into ours.
if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then
    printf '\n' >>"$file"
fi
printf '%s\n' "$key" >>"$file"
printf 'status\tadded\n'
