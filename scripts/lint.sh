#!/usr/bin/env bash
# Source checks, one line each, then "lint: N passed, M failed" (exit 1 on a failure):
#   1. every tracked C file in src/, tests/unit, tests/fuzz and bench is clang-formatted
#   2. no file in src/ is over MAX_FILE_LINES lines
#   3. no function in src/ is over MAX_FUNC_LINES lines, except the parser state
#      machines in STATE_MACHINES, each with a comment above it saying "state machine"
#   4. no line in src/ is over the ColumnLimit of .clang-format
# Needs clang-format and universal-ctags (scripts/deps.sh installs both).
set -uo pipefail
cd "$(dirname "$0")/.."

MAX_FILE_LINES=1500
MAX_FUNC_LINES=120
# file:function. A parser's single state machine may be longer than MAX_FUNC_LINES
# when splitting it would scatter its states; the comment above it must say why
# (and contain the words "state machine").
STATE_MACHINES=(
  src/common/csv.c:csv_next
)

PASS=0
FAIL=0
N=0
ok() { N=$((N + 1)); PASS=$((PASS + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAIL=$((FAIL + 1)); echo "not ok $N - $*"; }
detail() { sed 's/^/    /'; }

# The same file set as `make format`.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t C_FILES < <(git ls-files 'src/*.[ch]' 'tests/unit/*.c' 'tests/fuzz/*.c' 'bench/*.c')
  mapfile -t SRC_FILES < <(git ls-files 'src/*.[ch]')
else
  mapfile -t C_FILES < <(find src -name '*.[ch]'; find tests/unit tests/fuzz bench -maxdepth 1 -name '*.c' | sort)
  mapfile -t SRC_FILES < <(find src -name '*.[ch]' | sort)
fi

# 1. formatting
if ! command -v clang-format >/dev/null 2>&1; then
  not_ok "clang-format: not installed (Debian package clang-format; run scripts/deps.sh)"
else
  ver=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
  [[ $ver == 14 ]] || echo "# note: .clang-format is tuned for clang-format 14; this is $ver, which may format differently"
  bad=()
  for f in "${C_FILES[@]}"; do
    clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]} == 0)); then
    ok "clang-format: ${#C_FILES[@]} files formatted"
  else
    report=$(for f in "${bad[@]}"; do
      echo "$f: $(clang-format --style=file "$f" | diff "$f" - | grep -c '^<') lines would change"
    done)
    detail <<<"$report"
    total=$(awk '{s += $(NF - 3)} END {print s + 0}' <<<"$report")
    not_ok "clang-format: ${#bad[@]} of ${#C_FILES[@]} files not formatted ($total lines); fix with: make format"
  fi
fi

# 2. file length
long=()
for f in "${SRC_FILES[@]}"; do
  n=$(wc -l <"$f")
  ((n > MAX_FILE_LINES)) && long+=("$f: $n lines")
done
if ((${#long[@]} == 0)); then
  ok "file length: no file in src/ over $MAX_FILE_LINES lines"
else
  printf '%s\n' "${long[@]}" | detail
  not_ok "file length: ${#long[@]} files in src/ over $MAX_FILE_LINES lines"
fi

# 3. function length (universal-ctags gives each function's first and last line)
if ! command -v ctags >/dev/null 2>&1; then
  not_ok "function length: ctags not installed (Debian package universal-ctags; run scripts/deps.sh)"
elif ! ctags --version 2>/dev/null | grep -q 'Universal Ctags'; then
  not_ok "function length: $(command -v ctags) is not Universal Ctags (Debian package universal-ctags)"
elif ! tags=$(ctags --sort=no --languages=C --langmap=C:.c.h --c-kinds=f --fields=+ne -f - "${SRC_FILES[@]}" 2>&1); then
  echo "$tags" | detail
  not_ok "function length: ctags failed"
else
  # name, file, first line, last line
  funcs=$(awk -F'\t' '{
      l = e = 0
      for (i = 4; i <= NF; i++) {
        if ($i ~ /^line:/) l = substr($i, 6)
        if ($i ~ /^end:/) e = substr($i, 5)
      }
      if (l && e) print $1 "\t" $2 "\t" l "\t" e
    }' <<<"$tags")
  # The comment block just above a function (skipping the return type and any
  # other lines of its head, up to a blank line or the end of the previous item).
  comment_above() { # file, line
    awk -v at="$2" 'NR < at { line[NR] = $0 } END {
        i = at - 1
        while (i > 0 && line[i] !~ /^[ \t]*$/ && line[i] !~ /\*\/[ \t]*$/ && line[i] !~ /^[ \t]*\/\// \
               && line[i] !~ /[;}][ \t]*$/) i--
        while (i > 0 && (line[i] ~ /^[ \t]*(\/\*|\*|\/\/)/ || line[i] ~ /\*\/[ \t]*$/)) { print line[i]; i-- }
      }' "$1"
  }
  over=()
  allowed=0
  while IFS=$'\t' read -r name file first last; do
    len=$((last - first + 1))
    ((len > MAX_FUNC_LINES)) || continue
    if printf '%s\n' "${STATE_MACHINES[@]}" | grep -qxF "$file:$name"; then
      if comment_above "$file" "$first" | grep -qi 'state machine'; then
        allowed=$((allowed + 1))
        continue
      fi
      over+=("$file:$first: $name: $len lines (a listed state machine, but the comment above it does not say \"state machine\")")
    else
      over+=("$file:$first: $name: $len lines")
    fi
  done <<<"$funcs"
  if ((${#over[@]} == 0)); then
    ok "function length: no function in src/ over $MAX_FUNC_LINES lines ($allowed listed state machines)"
  else
    printf "%s\n" "${over[@]}" | sort | detail
    not_ok "function length: ${#over[@]} functions in src/ over $MAX_FUNC_LINES lines"
  fi
fi

# 4. line length, in characters (the limit .clang-format sets)
limit=$(sed -n 's/^ColumnLimit:[ \t]*\([0-9]*\).*/\1/p' .clang-format 2>/dev/null)
limit=${limit:-100}
wide=$(LC_ALL=C.UTF-8 grep -nE "^.{$((limit + 1)),}" "${SRC_FILES[@]}" /dev/null | cut -d: -f1,2)
if [[ -z $wide ]]; then
  ok "line length: no line in src/ over $limit columns"
else
  nwide=$(wc -l <<<"$wide")
  awk -F: '{n[$1]++} END {for (f in n) print f ": " n[f] " over the limit"}' <<<"$wide" | sort | detail
  not_ok "line length: $nwide lines in src/ over $limit columns"
fi

echo "lint: $PASS passed, $FAIL failed"
((FAIL == 0))
