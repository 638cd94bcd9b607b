"""What an answer's text may hold, imported by checklist_core.py: the characters a reader cannot see
(hidden_characters), how a value from outside is printed (shown, masked), and the secret filter
(secret_in), which finds a password, PIN, code or key given in an answer, and key material (hex, base64,
PEM). Python 3.8 or later, standard library only; it imports nothing of the checklist's own.

The regexes come first, each with a comment giving an example; the functions follow. secret_found()
reads a text in layers: key material by shape (hex_key, pieced_key, base64_key, base32_key, byte_run); a
value bound to a credential's name (bound_secret: bound_value, slot_secret), a user name and its password
(user_pair_password, default_credential, stated_default), a command or configuration line (COMMAND_PASSWORDS), a
code's number after or before its name (code_number, number_before_code), a Wi-Fi network's key (wifi_value); a
password near a credential's word (credential_token, context_secret); last, a token shaped like a password,
passphrase or API token anywhere (password_shaped). Numbers that are no code (phone numbers, a meeting's ID,
opening hours) are blanked first (phone_blanked, schedule_blanked). Each refusal names the
value only by its start and length (masked). tools/form.html holds the same filter in JavaScript, function
for function; the tests compare the two on every test string.
"""
import binascii
import bisect
import collections
import functools
import html.entities
import itertools
import math
import re
import unicodedata
from urllib.parse import unquote

CONFIDENTIAL = ("send confidential material through a confidential channel and record only a pointer "
                "(ID, date, recipient): see 'Answering' in README.md")
# Controls, formats, separators, private use and surrogates. Not Cn (unassigned): an emoji newer than
# this Python's Unicode is Cn here but a symbol to the browser, and the two must agree. The noncharacters
# (U+FDD0 to U+FDEF, and U+FFFE and U+FFFF of every plane), which are Cn too but never assigned, count as
# invisible: see noncharacter()
INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}
UNSEEN = INVISIBLE | {"Mn", "Me"}                    # with combining marks: categories that render as nothing
# Hangul and braille blanks, and Khmer's deprecated inherent vowels: letters and marks that render as nothing
FILLERS = "\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0"
# Variation selectors: each picks a form of the character before it (an emoji's, a CJK ideograph's), and is hidden
# anywhere else (selects)
VARIATION = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef\u180b-\u180d\u180f]")
# ... Mongolian's free variation selectors among them, after a Mongolian letter only; and characters that render as
# nothing wherever they stand: the combining grapheme joiner, specials not yet assigned, the rest of plane 14
IGNORED = re.compile("[\u034f\ufff0-\ufff8\U000e0080-\U000e00ff\U000e01f0-\U000e0fff]")
MONGOLIAN = re.compile("[\u1800-\u18af]")
IDEOGRAPH_SELECTORS = 4
IDEOGRAPH = re.compile("[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
JOINERS = "\u200c\u200d"                            # ZWNJ and ZWJ: Persian, Indic and emoji spelling needs them
BIDI_MARKS = "\u200e\u200f"                         # LRM and RLM: Arabic and Hebrew text needs them (not overrides)
# The blocks of the right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, N'Ko, ... and their presentation
# forms): a letter of one lets the text hold BIDI_MARKS
RTL_BLOCK = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")
# A character that is not printable ASCII (the only kind that may render blank)
NOT_ASCII = re.compile(r"[^ -~]")
# What may be an HTML entity, named or numeric: '&nbsp;', '&#8203;', '&#x202E;' (and '&T;', which is not one:
# a name is an entity only if HTML defines it, see entity())
ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);")
ENTITY_NAMES = frozenset(name[:-1] for name in html.entities.html5 if name.endswith(";"))   # 'amp', 'nbsp', ...
# A Markdown link shell, whose text is empty: '[](#req-3)'
ASCII_UNSEEN = re.compile(r"[\x00-\x20\x7f]+")    # ASCII's whitespace and controls
LINK_SHELL = re.compile(r"!?\[\]\([^)]*\)")
# The middle of a Markdown inline link or image: '[text](' (an autolink <https://...> has none)
MD_LINK = re.compile(r"\]\(")
# An item ID written with a hyphen that is not ASCII: 'REQ‑4' (U+2011)
SNMP_URL = re.compile(r"(?<![A-Za-z0-9+.-])snmp://[^\s@/:]+@", re.I)   # 'snmp://kittiwake_ro@10.0.0.2'
ID_LOOKALIKE = re.compile(r"(?<![A-Za-z])[A-Z]{2,4}[\u2010-\u2015\u2212][0-9]")
# UTF-8 text read once more as Windows-1252 ('CafÃ© MÃ¼ller' for 'Café Müller', 'â€™' for '’'): what a tool made of it
# ('ÐŸÐµÑ€Ð¼ÑŒ' for 'Пермь', 'äº¬' for '京'), or a character a decoder could not read (U+FFFD)
UTF8_TAIL = r"\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022" \
            r"\u2026\u2030\u2039\u203a\u20ac\u2122"
MOJIBAKE = re.compile(r"\u00c3[\u00a0-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u2013\u2014\u2018-\u201e"
                      r"\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]|\u00c2[\u00a0-\u00bf]|\u00e2\u20ac|"
                      r"[\u00c4-\u00df][" + UTF8_TAIL.replace(r"\u0080-\u00bf", r"\u0080-\u009f\u00a1-\u00bf") + r"]|"
                      r"[\u00e0-\u00ef][" + UTF8_TAIL + "]{2}|\ufffd")
# A hex prefix or escape before a hex digit: '0x46', '\x46'
HEX_PREFIX = re.compile(r"(?:0[xX]|\\x)(?=[0-9A-Fa-f])")
# The backslash of a Markdown escape, which renders as the character alone: '\-' is '-', '\=' is '='
MD_ESCAPE = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
# Markdown emphasis and code marks: they render as nothing between two halves of a key
MARKUP = re.compile(r"[*`]")
# Two '$' signs and what stands between them, paired from the left as GitHub pairs math: '$x^2$'
MATH = re.compile(r"\$([^$]*)\$")
# A LaTeX command, which renders as its effect and not its name: '\mathtt', '\color', '\text'
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# Math commands that hide or recolour text, refused wherever they stand: '\color', '\textcolor', '\hphantom'
HIDING_COMMAND = re.compile(r"\\(?:textcolor|color|[hv]?phantom)")
# A canonical UUID (8-4-4-4-12 hex digits): an identifier, taken out before the hex scan if it is valid (its
# version digit 1 to 8, its variant digit 8, 9, a or b) or labelled (UUID_LABEL), unless two stand side by side
# with only spaces between (a 64-digit key in two halves): see uuids_out()
UUID = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")
UUID_LABEL = re.compile(r"(?<![\w-])[gu]uid[\s:=#]{0,3}$", re.I)       # 'uuid ', 'urn:uuid:', 'GUID='
UUID_LABEL_REACH = 12
# A full IPv6 address (eight groups of 1 to 4 hex digits): taken out before the hex scan if it is labelled
# (IPV6_LABEL) or in the documentation prefix (2001:db8::/32); and one compressed with '::' (at most seven
# groups, so never 32 digits), always taken out
IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}(?![0-9A-Fa-f:])")
IPV6_SHORT = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::"
                        r"(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?(?![0-9A-Fa-f:])")
IPV6_DOCUMENTATION = re.compile(r"2001:0{0,2}db8:", re.I)
# A word that says an address follows, at most three words before it: 'IPv6 ', 'N3 address: ', 'prefix '
IPV6_LABEL = re.compile(r"(?<![\w-])(?:ipv6|addr(?:ess)?(?:es)?|prefix(?:es)?|routes?)(?:[^\w;.]+[\w-]+){0,3}[^\w;.]*$",
                        re.I)
IPV6_LABEL_REACH = 48
# What may stand between two addresses of one list: the second is taken out if the first was ('IPv6 addresses A, B')
IPV6_LIST_GAP = re.compile(r"\s*(?:[,;/&]|and|or)?\s*", re.I)
# A MAC address (six 2-digit groups joined by one kind of ':' or '-'): taken out before the hex scan
MAC = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f:-])")
# A run of hex digits 32 characters long or more: one group of 32 or more, or groups of fewer than 32
# (whole groups) joined across any run of characters that are neither letters nor digits (spaces,
# punctuation, symbols, '_'): '465b 5ce8 b199 ...', '46:5b:5c:...', '(465b5ce8)(b199b49f)...', '465b5ce8!b199...';
# hashes (40 or 64 digits) are never joined, so lists of them stay apart. key_like() judges the groups
HEX_RUN = re.compile(r"(?<![0-9A-Fa-f])(?=[0-9A-Fa-f][0-9A-Fa-f\W_]{31})(?:[0-9A-Fa-f]{32,}|[0-9A-Fa-f]{1,31}"
                     r"(?![0-9A-Fa-f])(?:[\W_]+[0-9A-Fa-f]{1,31}(?![0-9A-Fa-f]))*)")
HEX_GROUP = re.compile(r"[0-9A-Fa-f]+")
# What parts a run into the items of a list: a list of identifiers ('5A002.a.1, 5A992.c', 'TACs 0x00A001, 0x00A002',
# 'serials 21A8F3C2, 21A8F3C3') is judged item by item, unless its items read as a key cut into pieces (split_key)
LIST_BREAK = re.compile(r"[,;]")
KEY_DIGITS = (32, 64)                               # the hex lengths of a 128-bit and a 256-bit key
# A hex run of 8 digits or more with no letter or digit either side: a piece of a key that words or labels cut
# ('K1=465b5ce8b199b49f K2=aa5f0a2ee238a6bc', '465b5ce8 then b199b49f then ...'); see pieced_key
HEX_PIECE = re.compile(r"(?<![^\W_])[0-9A-Fa-f]{8,}(?![^\W_])")
SHORT_COMMIT = (7, 12)                              # the lengths of an abbreviated git commit hash
# A letter or digit of any script (a word a run's first or last group may be a piece of)
WORD_CHARACTER = re.compile(r"[^\W_]")
# A C string of 16 bytes or more written as octal escapes: '\106\133\134\350...'
OCTAL_ESCAPES = re.compile(r"(?:\\[0-7]{1,3}){16,}")
# A base64-alphabet run of hex digits only (with '-' or '_'): the hex rules judge it
HEX_ONLY = re.compile(r"[0-9A-Fa-f_-]+")
HASH_LENGTHS = (40, 56, 64, 96, 128)                # SHA-1, SHA-224, SHA-256, SHA-384, SHA-512 in hex
COMMIT_LENGTH = 40                                  # a git commit: in a URL's path, a run of this length is one
FAR_LENGTHS = (40, 64)                              # SHA-1 and SHA-256: a label may stand a few words before these
# The words that say a hex run is a digest: whole words ('digital', 'committee' and 'commit-free' are not)
HASH_WORDS = (r"sha-?(?:1|224|256|384|512)(?:sums?)?|sha2-(?:224|256|384|512)|sha3(?:-(?:224|256|384|512))?|"
              r"blake2[bs]|commits?|digests?|checksums?|fingerprints?|shas?|hash(?:es)?|revisions?")
# A hash label standing right before the run: a hash word, then at most a file name in parentheses, a ')' and
# three of ' :=/@#': 'sha256:', 'SHA-256 ', '@sha256:', 'commit/', 'SHA256 (fw.bin) = ', 'fingerprint (SHA256) = '.
# Matched at the end of the HASH_LABEL_REACH characters before the run
HASH_LABEL = re.compile(rf"(?<![\w-])(?:{HASH_WORDS})(?:\s*\([^()\s]{{1,64}}\))?\)?[\s:=/@#]{{0,3}}$", re.I)
# A hash word up to five words before a SHA-1 or SHA-256 digest: 'SHA-256 of release v1.0: ', 'sha256sum of the
# release tarball: '; none of the words between names a key (KEY_WORD) or negates
FAR_LABEL = re.compile(rf"(?<![\w-])(?:{HASH_WORDS})(?P<between>(?:[\s(),:=/@#]+[\w.'’/+-]+){{1,5}})"
                       r"[\s(),:=/@#]{1,3}$", re.I)
KEY_WORD = re.compile(r"(?<![\w-])(?:keys?|k|ki|opc?|secrets?|passwords?|psk|private|seed)(?![\w-])", re.I)
# A label of a 40-digit run only (no key has 40 hex digits): 'git ', a Gerrit 'Change-Id: I', an OpenPGP key's
# fingerprint ('PGP key: ')
COMMIT_LABEL = re.compile(r"(?<![\w-])(?:(?:git|(?:open)?pgp(?:\s+key)?|gpg(?:\s+key)?)[\s:=/@#]{0,3}|change-id:\s*I)$",
                          re.I)
HASH_LABEL_REACH = 96
# A negation up to three words before a hash label, which then labels nothing: 'not a sha256', 'no checksum',
# "isn't really a sha256" (not across the end of a sentence or clause: '.', ';', '!', '?')
NEGATION = re.compile(r"(?<![\w-])(?:not|no|non|never|nor|without|isn['’]t)"
                      r"(?:[^\w'’;.!?]+[\w'’]+){0,3}[^\w'’;.!?]*$", re.I)
NEGATION_WORD = re.compile(r"(?<![\w-])(?:not|no|non|never|nor|without|isn['’]t)(?![\w-])", re.I)
NEGATION_REACH = 40
# A URL: a short scheme (so the search stays linear), its authority (user, password, host and port),
# path, and the query and fragment after them
URL = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://(?P<authority>[^/?#\s<>]*)"
                 r"(?P<path>[^?#\s<>]*)(?P<rest>[^\s<>]*)")
# A run of base64 or base64url characters with its padding
B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
NAME_PARTS_MIN, NAME_PART_MAX = 4, 5   # four short parts or more, of unlike lengths, joined by '-': a name
# Base64 or base32 written in groups of one length, 4, 8 or 12 characters (the last no longer), each joined to
# the next by spaces, a dot or a hyphen: 'JBSW Y3DP EHPK 3PXP', 'Rltc6LGZ tJ+qXwou 4jimvA==',
# 'Rltc6LGZtJ+q.Xwou4jimvA=='; the groups are joined before the scan, unless they are words
B64_GROUPS = re.compile(r"(?<![A-Za-z0-9+/_=.-])(?=[A-Za-z0-9+/_=. -]{17})"      # 16 characters joined, or more
                        r"(?:(?:[A-Za-z0-9+/_]{4}(?: +|[.-])){2,}[A-Za-z0-9+/_]{2,4}"
                        r"|(?:[A-Za-z0-9+/_]{8}(?: +|[.-]))+[A-Za-z0-9+/_]{2,8}"
                        r"|(?:[A-Za-z0-9+/_]{12}(?: +|[.-]))+[A-Za-z0-9+/_]{2,12})"
                        r"={0,6}(?![A-Za-z0-9+/_=]|[.-][A-Za-z0-9+/_])")
B64_JOINS = re.compile(r" +|[.-]")
# Base64 or base32 cut by runs of spaces into pieces (see joined_pieces): two to six pieces, the last one padded
# ('Rltc6LGZtJ+qX wou4jimvA=='); and two or more pieces of six characters or more, unpadded ('Rltc6LGZtJ+qX wou4jimvA')
B64_PADDED = re.compile(r"(?<![A-Za-z0-9+/_=-])(?:[A-Za-z0-9+/_-]+ +){1,5}[A-Za-z0-9+/_-]+={1,2}(?![A-Za-z0-9+/_=-])")
B64_CHAIN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{6,}(?: +[A-Za-z0-9+/_-]{6,})+(?![A-Za-z0-9+/_=-])")
MAX_PIECES = 6
CHARACTER_CLASSES = (re.compile("[a-z]"), re.compile("[A-Z]"), re.compile("[0-9]"))
PATH_PARTS = re.compile(r"[-_./]")                 # what parts a path or a kebab-case or snake_case name
B64_KEY_LENGTHS = (24, 44, 88)                      # 16, 32 and 64 bytes, with their padding
UNPADDED_KEY_LENGTHS = (22, 24, 26, 32, 43, 52)     # 16 and 32 bytes in base64 (22, 43) and base32 (26, 52), and 24, 32
# Identifiers that read as base64 and are none, taken out before its scan: an ssh-keygen fingerprint ('SHA256:'
# and 43 base64 characters), an SPDX element ID ('SPDXRef-Package-open5gs') and a Gerrit Change-Id ('I' and 40 hex)
NOT_BASE64 = re.compile(r"(?<![\w-])(?:SHA256:[A-Za-z0-9+/]{43}(?![A-Za-z0-9+/=])|SPDXRef-[A-Za-z0-9.-]+|"
                        r"Change-Id:\s*I[0-9a-fA-F]{40}(?![A-Za-z0-9+/=_-]))")
PERCENT_ROUNDS = 3                                  # percent-encoding undone up to three times ('%252B' is '+')
# Base32 in one letter case, 16 characters or more (an 80-bit TOTP seed), with its padding
BASE32_RUN = re.compile(r"(?<![^\W_])(?:[A-Z2-7]{16,}|[a-z2-7]{16,})={0,6}(?![^\W_])")
VOWEL_SHARE = 0.25
LOWER_WORD = re.compile(r"[a-z]+")      # two groups that are words ('NEA2 then NEA3 then NEA1') make no base64
TITLE_WORD = re.compile(r"[A-Z][a-z]+")
# A word in a base64-alphabet run, in one of its shapes: 'session', 'Session', 'SCTP', '5'
WORDSHAPE = re.compile(r"[a-z]+|[A-Z][a-z]+|[A-Z]+|[0-9]+")
# A camelCase identifier: 'pduSessionResourceSetupRequestTransfer', 'absoluteFrequencySSB22'
CAMEL = re.compile(r"[a-z]*(?:[A-Z][a-z]{2,}|[A-Z]{2,}(?=[A-Z][a-z]|\d|$))*\d*")
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")     # 'POSTGRES_PASSWORD=': a variable, not padding
ACRONYM_NUMBER = re.compile(r"[A-Z]{2,6}[0-9]{1,3}")      # 'NIS2', 'IEC62443': a name's part, not key material
# A URL whose path is its secret: Slack's, Discord's and Microsoft Teams' incoming webhooks
WEBHOOK = re.compile(r"hooks\.slack\.com/(?:services|workflows)/|discord(?:app)?\.com/api/webhooks/|"
                     r"\.webhook\.office\.com/|/webhookb2/", re.I)
# A signed token (JWT): a base64url header, which starts '{"' ('eyJ'), and payload
JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")    # at a run's start: linear time
# The first line of a PEM block or of another private key format, in any letter case
KEY_MARKERS = re.compile(r"-----\s*BEGIN [A-Z0-9 ]*-----|PRIVATE KEY-----|PuTTY-User-Key-File|AGE-SECRET-KEY-", re.I)
# A password or token after its label and ':', '=', '->', '=>', ' - ' or ' is ': 'admin password: Tr0ub4dor&3',
# 'pass: Tr0ub4dor&3', 'the password is Tr0ub4dor&3', 'DB_PASSWORD=hunter22',
# 'API token: 3f9a1c2e7b', 'PSK: ...', 'Passwort: ...', 'mot de passe: ...' (not 'password policy: ...', whose label
# is another word's, nor 'token bucket'); secret_value() judges the value's first token after any label
# ('credentials: K7#pQ2!xLm9 until go-live' as 'password: ...'; 'credentials: srsRAN_4G defaults' is a name)
# A label may stand in quotes before its separator ('"password": "..."', "'token' = '...'": LABEL_SEPARATOR)
LABEL_SEPARATOR = r"(?:[\"'\u2019\u201d]?\s*(?:->|=>|[:=])\s*|\s+-\s+|\s+is(?:\s*[:=]\s*|\s+)|\s*[\u4fc2\u662f\u70ba\u4e3a]\s*)(?P<value>\S+)"
# A bare 'pass' labels only before ':' or '=' ('pass: ...', 'PASS=...'; not 'Interop test: pass - 20241105')
SECRET_LABEL = re.compile(r"(?<![A-Za-z0-9])(?:pass(?:words?|wd|phrases?|codes?|(?=[\"'\u2019\u201d]?\s*[:=]))|"
                          r"pwd|pw|psk|"
                          r"credentials?|passwort|kennwort|mot\s+(?:de\s+|d['\u2019]\s*)passe|contrase\u00f1a|senha|"
                          r"(?:api|secret|private)[ _-]?(?:keys?|tokens?|secrets?)|apikeys?|secrets?|tokens?)"
                          + LABEL_SEPARATOR, re.I)
# An UPPER-CASE environment name ending in one of those words is a label too ('PGPASSWORD=...', 'DBPASS=...')
ENV_LABEL = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Z0-9_]*(?:PASS|PASSWORD|PASSWD|PWD|TOKEN|SECRET|STOP_STR|STOP_STR2)" + LABEL_SEPARATOR)
# A label before a user name and its password (H15-1): 'login: admin / X', 'creds: root, X', 'credentials for the
# OMC: admin / X' (PAIR_LABEL); a password label's value is walked too (judged_label: user_pair)
PAIR_LABEL = re.compile(r"(?<![A-Za-z0-9])(?:credentials?|creds|logins?|users?|accounts?)"
                        r"(?:\s+(?:for|of|on|at|to|in)(?:\s+[\w.-]+){1,3}?)?"
                        r"(?:[\"'\u2019\u201d]?\s*(?:->|=>|[:=])\s*|\s+-\s+|\s+is(?:\s*[:=]\s*|\s+))"
                        r"(?P<value>\S+)", re.I)
# A plain user name (USER_NAME: 'admin', 'svc.omc', 'root'); one glued to what follows by a separator (USER_GLUED:
# 'root,', 'admin/Changeme_123'); a separator standing alone between a user and a password (PAIR_SEPARATOR: '/', '-',
# an en or em dash as word processors type it, ';', '|', '->', '=>', 'and'); a plain lower-case word or its possessive, not judged after a user name and a space (PLAIN_WORD); the tokens walked (PAIR_WALK)
USER_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,40}")
USER_GLUED = re.compile(r"(?P<user>[A-Za-z0-9._@+-]{1,40})[/,:(;](?P<rest>\S*)")
PAIR_SEPARATOR = re.compile(r"[/,:(;|\u2013\u2014-]|->|=>|and", re.I)
PLAIN_WORD = re.compile(r"[a-z]+(?:['\u2019]s)?")         # "vendor's" too
POINTING_WORDS = frozenset("in im at on see via from under unter dans en nel nella na w em siehe voir ver vedi zie".split())
PAIR_WALK = 4
NON_SPACE = re.compile(r"\S+")
# A SIM card's access code after its label (group 'code': 'ADM1: 84729135', 'PUK: 84729135'): four digits or more,
# or 16 hex digits or more (SIM_CODE; not 'PIN code policy: ...' nor 'PIN: not used'); a SIM's OTA key after its
# label (KIc, KID, KIK, 'OTA key': 'OTA key: 465B5CE8...'): 16 hex digits or more only (SIM_KEY; not 'JWT kid: ...')
SIM_LABEL = re.compile(r"(?<![A-Za-z0-9])(?:(?P<code>adm[1-4]?|pin[12]?|puk[12]?|\u043f(?:\u0438[h\u043d]|\u0443[k\u043a])[12]?|"
                       r"\u09aa\u09bf(?:\u09a8|\u0987\u0989\u0995\u09c7))|ki[cdk]|ota\s+key)" + LABEL_SEPARATOR,
                       re.I)
# An answer that names a password, PIN, credential, login, token, key or administrator account, in English or another
# language (CREDENTIAL_WORD, also inside a run-together name: 'adminPassword', 'clientSecret', 'rootpw'; SIM_WORD in
# its own case: 'PIN1', 'PUK', 'ADM1'; SIM_KEY_WORD: 'KIc', 'OTA key', 'K:'), holds no token that looks like a
# password or key, wherever it stands (credential_token). Words are matched as the scan reads them: look-alike
# letters folded to Latin ('п[аa][рp][оo]л'), without combining marks (Hindi 'पसवरड', Thai 'รหสผาน')
# Backup and recovery codes, recovery keys and the like in other languages, a PIN or password in a few more: their
# numbers are judged as after a password's name (CREDENTIAL_WORD, PASSWORD_NAME: 'Kody zapasowe: 4829 1038')
RECOVERY_NAMES = (r"codes?\s+(?:de|ed)\s+(?:secours|r(?:\u00e9|e)cup(?:\u00e9|e)ration|sauvegarde)|c(?:\u00f3|o)digos?\s+de\s+(?:respaldo|"
                  r"recuperaci(?:\u00f3|o)n|recupera(?:\u00e7|c)(?:\u00e3|a)o|backup)|codici?\s+di\s+(?:backup|recupero|riserva)|"
                  r"herstelcodes?|kody?\s+zapasow\w*|reservkod\w*|[p\u0440][e\u0435]\u0437[e\u0435][p\u0440]\u0432\w*\s+[k\u043a][o\u043e]\u0434\w*|"
                  r"(?:wiederherstellungs|sicherungs|notfall|kenn|best(?:\u00e4|ae)tigungs)codes?|geheimnummer|"
                  r"wiederherstellungsschl(?:\u00fc|ue)ssel|cl(?:\u00e9|e)\s+de\s+r(?:\u00e9|e)cup(?:\u00e9|e)ration|"
                  r"clave\s+de\s+recuperaci(?:\u00f3|o)n|chave\s+de\s+recupera(?:\u00e7|c)(?:\u00e3|a)o|herstelsleutel|recovery\s+keys?|"
                  r"\u041f[I\u0406][H\u041d]|\u0643\u0644\u0645\u0629 \u0645\u0631\u0648\u0631|gjenopprettingskod\w*|"
                  r"gendannelseskod\w*|pasahitz\w*|kody\s+odzyskiwania|\u00e5terst\u00e4llningskoder|\u00e5terst\u00e4llningskod|kurtarma\s+kodlari|kurtarma\s+kodlari|\u0631\u0645\u0648\u0632\s+\u0627\u0644\u0627\u0633\u062a\u0639\u0627\u062f\u0629|\u03baw\u03b4i\u03bao\u03af\s+an\u03ac\u03ba\u03c4\u03b7\u03c3\u03b7\u03c2|Kw\u03b4i\u03bao\u03af\s+an\u03ac\u03ba\u03c4\u03b7\u03c3\u03b7\u03c2|\u03baw\u03b4i\u03bao\u03cd\u03c2\s+an\u03ac\u03ba\u03c4\u03b7\u03c3\u03b7\u03c2|Kw\u03b4i\u03bao\u03cd\u03c2\s+an\u03ac\u03ba\u03c4\u03b7\u03c3\u03b7\u03c2|\u05e7\u05d5\u05d3\u05d9\s+\u05d2\u05d9\u05d1\u05d5\u05d9|\u05e7\u05d5\u05d3\u05d9\s+\u05e9\u05d7\u05d6\u05d5\u05e8|kodovi\s+za\s+oporavak|Kodovi\s+za\s+oporavak|z\u00e1lo\u017en\u00e9\s+k\u00f3dy|Z\u00e1lo\u017en\u00e9\s+k\u00f3dy|z\u00e1lo\u017en\u00ed\s+k\u00f3dy|Z\u00e1lo\u017en\u00ed\s+k\u00f3dy|\u043ao\u0434\u0438\s+\u0432i\u0434\u043do\u0432\u043be\u043d\u043d\u044f|Ko\u0434\u0438\s+\u0432i\u0434\u043do\u0432\u043be\u043d\u043d\u044f|\u043ao\u0434\u044b\s+\u0432occ\u0442a\u043do\u0432\u043be\u043d\u0438\u044f|Ko\u0434\u044b\s+\u0432occ\u0442a\u043do\u0432\u043be\u043d\u0438\u044f|atk\u016brimo\s+kodai|Atk\u016brimo\s+kodai|\u06a9\u062f\u0647\u0627\u06cc\s+\u0628\u0627\u0632\u06cc\u0627\u0628\u06cc|codis\s+de\s+recuperaci\u00f3|Codis\s+de\s+recuperaci\u00f3|codis\s+de\s+c\u00f2pia\s+de\s+seguretat|Codis\s+de\s+c\u00f2pia\s+de\s+seguretat"
                  r"|[k\u043a]o\u0434o\u0432e\s+\u0437a\s+\u0432\u044a\u0437c\u0442a\u043do\u0432\u044f\u0432a\u043de|taastekood\w*|helyre\u00e1ll\u00edt\u00e1si\s+k\u00f3d(?:ok|ja|ot)?|atkop\u0161anas\s+kod(?:i|s|u)|coduri(?:le)?\s+de\s+recuperare|z\u00e1chrann\u00e9\s+k\u00f3dy|mi?simbo\s+(?:ya|wa)\s+kurejesha|\u0631\u06cc\u06a9\u0648\u0631\u06cc\s+\u06a9\u0648\u0688\u0632?|\u09b0\u09bf\u0995\u09ad\u09be\u09b0\u09bf\s+\u0995\u09cb\u09a1|\u0631\u0645\u0648\u0632\s+\u0627\u0644\u0627\u0633\u062a(?:\u0631\u062c\u0627\u0639|\u0631\u062f\u0627\u062f)|[\u0623\u0627]\u0643\u0648\u0627\u062f\s+\u0627\u0644\u0627\u0633\u062a(?:\u0631\u062c\u0627\u0639|\u0631\u062f\u0627\u062f|\u0639\u0627\u062f\u0629)")
CREDENTIAL_WORD = re.compile(
    r"\u0ea5\u0eb0\u0eab\u0eb1?\u0e94|\u0648\u0634\u06d5\u06cc\s+\u0646\u0647\u06ce\u0646\u06cc|"   # Lao code, Sorani password
    r"pass(?:words?|wd|phrases?|codes?)|passwd|pswd|psw|p/w|pass[\s-]word|p[a4@]ssw[o0]rd|pword|secrets?|tokens?|"
    r"credentials?|"
    r"(?:auth|api|private|secret|master|access|encryption|signing|session|shared|client|subscriber|ssh|root|unlock|unseal|debug|jtag|"
    r"licen[cs]e|product|activation|sha|aes|des|md5|priv)[\s_-]?keys?|pw(?![a-z])|auth(?:entication)?(?=\s*[:=])|"
    r"(?<![^\W\d_])(?:pass(?=\s+\S*[0-9])|pwd|psk|pre-?shared|creds|(?:u|user|username|uid)/p(?:ass|w|wd)?(?![^\W_])|log(?:in|on)s?|log\s+in|sign\s+in|sign-in|"
    r"pa(?:ss|\u00df)wort|kennwort|zugangsdaten|mot\s+(?:de\s+|d['\u2019]\s*)passe|mdp|identifiants?|contrase(?:\u00f1|n)as?|claves?|"
    r"senhas?|palavra-passe|parola|has\u0142o|haslo|wachtwoord|adgangskode|l\u00f6senord|losenord|passord|salasana|"
    r"jelsz\u00f3|heslo|geslo|lozinka|parol\u0103|\u015fifre|sifre|m\u1eadt\s+kh\u1ea9u|mat\s+khau|kata\s+sandi|kata\s+laluan|contrasenya|slapta(?:\u017e|z)od\w*|ki|opc|" + RECOVERY_NAMES + r"|"
    r"admin|administrator|root|superuser|usernames?|community\s+strings?|snmp\s+community|community(?=\s*[:=])|"
    r"access\s+codes?|(?:door|lock|alarm|backup|recovery|mfa|2fa|otp|verification|user|vault|entry)\s+codes?|"
    r"zutrittscodes?|code\s+d['\u2019]acc[e\u00e8]s|(?:wi-?fi|wlan|wpa2?|network)\s+keys?|release\s+codes?|"
    r"host\s+keys?|padlocks?|identified\s+by|(?:wlan|wi-?fi|netzwerk)[-\s]?schl(?:\u00fc|ue)ssel|"
    r"(?:safe|lock)\s+combinations?|geheimzahl|tacacs\+?|radius\s+(?:secrets?|keys?)|recovery\s+keys?|mysql|psql|"
    r"sshpass|htpasswd|kinit|keytab|snmp(?:bulk)?(?:walk|get|set))(?![^\W\d_])|(?<!\S)-p(?=[^\s-]{6})|"
    r"\u03c3\u03c5[\u03bdn]\u03b8\u03b7\u03bc[\u03b1a]\u03c4[\u03b9i][\u03baK]|"
    r"\u06af\u0630\u0631\u0648\u0627\u0698\u0647|\u0915\u091f\u0936\u092c\u0926|sandi|Sandi|\u0f42\u0f66\u0f44\u0f0b\u0f68\u0f44|upu fa'alilo|Upu fa'alilo|chjave|Chjave|crae|Crae|\u0432\u04d1p\u0442\u0442\u04d1\u043d c\u04d1\u043cax|B\u04d1p\u0442\u0442\u04d1\u043d c\u04d1\u043cax|ryc\u044ca \u043a\u044b\u0432|\u0413yc\u044ca \u043a\u044b\u0432|peraule di passa\u00e7|Peraule di passa\u00e7|fockle follit|Fockle follit|ger-tremena|Ger-tremena|hes\u0142o|Hes\u0142o|liafuan segredu|Liafuan segredu|sikretu|Sikretu|parau huna|Parau huna|kiugo k\u0129a hitho|Kiugo k\u0129a hitho|gundo kuma|Gundo kuma|\u0917\u092a\u0924 \u0936\u092c\u0926|sikretu na fino'|Sikretu na fino'|\u02bb\u014dlelo huna|vosa vuni|Vosa vuni|konngol suu\u0257iingol|Konngol suu\u0257iingol|phasiwedi|Phasiwedi|phasiwede|Phasiwede|\u043d\u044eyca \u04afr\u044d|H\u044eyca \u04afr\u044d|pasvorto|Pasvorto|senhal|Senhal|pled-clav|Pled-clav|nya \u0263a\u0263la|Nya \u0263a\u0263la|ekigambo ky'ekyama|Ekigambo ky'ekyama|kontrase\u00f1a|Kontrase\u00f1a|\u043a\u0438c\u0442\u044d\u043b\u044d\u04a5 \u0442\u044b\u043b|K\u0438c\u0442\u044d\u043b\u044d\u04a5 \u0442\u044b\u043b|\u043a\u0438c\u0442\u044d\u043b\u044d\u04a5 \u0442\u044b\u043ba|K\u0438c\u0442\u044d\u043b\u044d\u04a5 \u0442\u044b\u043ba|ceph\u04af\u0499|Ceph\u04af\u0499|\u00f1e'\u1ebd\u00f1emi|\u00d1e'\u1ebd\u00f1emi|"
    r"\u043f[\u0430a][\u0440p][\u043eo]\u043b|\u043b[\u043eo]\u0437\u0438\u043d\u043a|"
    r"[\u0433r][\u0430a][\u0441c]\u043b|[\u03baK][\u03c9w]\u03b4[\u03b9i][\u03baK]|\u5bc6\u7801|\u5bc6\u78bc|"
    r"\u53e3\u4ee4|"
    r"\u30d1\u30b9\u30ef\u30fc\u30c9|\u6697\u8a3c\u756a\u53f7|\ube44\ubc00\ubc88\ud638|\uc554\ud638(?!\ud654)|\u0631\u0645\u0632|\u0628\u0627\u0633\u0648{1,2}\u0631\u062f|[\u0648\u0628]?(?:\u0627\u0644)?\u0645\u0648\u062f\u064a\u0628\u0627\u0633|"
    r"\u0643\u0644\u0645\u0629 (?:\u0627\u0644\u0645\u0631\u0648\u0631|(?:\u0627\u0644)?\u0633\u0631)|"
    r"\u6062\u590d\u7801|\u5907\u7528\u7801|\u30ea\u30ab\u30d0\u30ea\u30fc\u30b3\u30fc\u30c9|\u30d0\u30c3\u30af\u30a2\u30c3\u30d7\u30b3\u30fc\u30c9|\ubcf5\uad6c\s*\ucf54\ub4dc|\ubc31\uc5c5\s*\ucf54\ub4dc|\ud328\uc2a4\ud504\ub808\uc774\uc988|\ud328\uc2a4\uc6cc\ub4dc|\u05e1\u05d9\u05e1\u05de|\u092a\u093e?\u0938\u0935\u0930\u0921|\u0e23\u0e2b\u0e2a\u0e1c\u0e32\u0e19|\u0e23\u0e2b\u0e2a\u0e44\u0e27\u0e44\u0e1f",
    re.I)
SIM_WORD = re.compile(r"(?<![A-Za-z0-9])(?:PIN[sa]?[12]?(?![\s-]?pads?(?![A-Za-z]))|NIP|P\.I\.N\.?|PUKs?[12]?|ADM[1-4]?)(?![A-Za-z])|"
                      r"(?<![A-Za-z])(?:passcodes?|pin[\s-]?codes?|adm[1-4]?)(?![A-Za-z])", re.I)
PASSWORD_NAME = re.compile(r"pass(?:words?|wd|phrases?|codes?)|passwd|pwd|pw(?![a-z])|passwort|kennwort|geheimzahl|"
                           + RECOVERY_NAMES + r"|"
                           r"(?:door|lock|alarm|access|backup|recovery|mfa|2fa|otp|verification|user|vault|entry)"
                           r"\s+codes?|zutrittscodes?|code\s+d['\u2019]acc[e\u00e8]s|(?:wi-?fi|wlan|wpa2?|network)"
                           r"\s+keys?|community\s+strings?|(?:safe|lock)\s+combinations?|release\s+codes?|"
                           r"identified\s+by|"
                           r"mot\s+(?:de\s+|d['\u2019]\s*)passe|contrase(?:\u00f1|n)as?|senhas?|\u043f[\u0430a][\u0440p][\u043eo]\u043b|"
                           r"has(?:\u0142|l)o|heslo|l(?:\u00f6|o)senord|jelsz(?:\u00f3|o)|parol\u0103|salasana|wachtwoord|"
                           r"(?:\u015f|s)ifre|passord|adgangskode|lozinka|geslo|"
                           r"\u5bc6\u7801|\u5bc6\u78bc|\u53e3\u4ee4|\u30d1\u30b9\u30ef\u30fc\u30c9|"
                           r"\u6697\u8a3c\u756a\u53f7|\ube44\ubc00\ubc88\ud638|\u6062\u590d\u7801|\u5907\u7528\u7801|\u30ea\u30ab\u30d0\u30ea\u30fc\u30b3\u30fc\u30c9|\u30d0\u30c3\u30af\u30a2\u30c3\u30d7\u30b3\u30fc\u30c9|\ubcf5\uad6c\s*\ucf54\ub4dc|\ubc31\uc5c5\s*\ucf54\ub4dc|\ud328\uc2a4\ud504\ub808\uc774\uc988|\ud328\uc2a4\uc6cc\ub4dc|\u05e1\u05d9\u05e1\u05de|\u0643\u0644\u0645\u0629\s+\u0627\u0644\u0645\u0631\u0648\u0631|\u0643\u0644\u0645\u0629\s+\u0627\u0644\u0633\u0631|\u0631\u0645\u0632\s+\u0639\u0628\u0648\u0631|\u06af\u0630\u0631\u0648\u0627\u0698\u0647|\u092a\u093e\u0938\u0935\u0930\u0921|\u0e23\u0e2b\u0e2a\u0e1c\u0e32\u0e19|\u067e\u0627\u0633\u0648\u0631\u0688|\u067e\u0633\u0648\u0631\u062f|\uc554\ud638(?!\ud654)|\u0648?\u0627\u0644\u0633\u0631(?![^\W\d_])|paswoord|\u5408\u8a00\u8449|\u0628\u0627\u0633\u0648{1,2}\u0631\u062f|[\u0648\u0628]?(?:\u0627\u0644)?\u0645\u0648\u062f\u064a\u0628\u0627\u0633", re.I)
YEAR = re.compile(r"(?:19|20)[0-9]{2}")
# The token right after a password's own word, its label or 'is' between ('password ops-team-8812'): not taken for
# an identifier, product or model number when a part of it is a number of three digits or more (NUMBER_PART;
# context_secret: strict)
NUMBER_PART = re.compile(r"(?<![^-_.=])[0-9]{3,}(?![^-_.=])")
PASSWORD_VALUE = re.compile(r"(?:" + PASSWORD_NAME.pattern + r")(?:\s*[:=]\s*|\s+is\s+|\s+)(?P<value>\S+)", re.I)
SIM_KEY_WORD = re.compile(r"(?<![A-Za-z0-9])(?:KI[CDK]|KIc|OTA\s+[Kk]eys?|K(?=\s*[:=]))(?![A-Za-z])")
SIM_CASE = re.compile(r"[A-Z]|adm|pas|pin.")   # 'PIN', 'ADM1': in capitals, but for adm, passcode and PIN code
# Near such a word, a token of SECRET_VALUE_LENGTH characters or more that mixes letters and digits or holds a
# symbol of PASSWORD_SYMBOL is refused (context_secret), unless it names something (named_near_credential); so is a
# number of PASSCODE_DIGITS to PASSCODE_MAX digits (SIM_DIGITS after a SIM word), or one of KEY_DIGITS_MIN or
# more; BYTE_RUN numbers that fit a byte (BYTE) in a row, apart by spaces, commas and the like (BYTE_GAP); and a
# password's own word, a few words and ':' or '=' (or 'is' right after it) before a lone word that ends the answer or a clause
# (PASSWORD_AT_END: 'the Wi-Fi password is sunshine', 'password: monkey, rotated yearly', 'WLAN-Passwort für das
# Labor: hochsommerregen'), unless it describes the password (DESCRIBING_WORDS)
PASSWORD_SYMBOL = re.compile(r"[!$%^*~|\\`]")
INNER_SYMBOL = re.compile(r"(?<=[^\W_])[@#+](?=[^\W_])")     # 'Admin@storage', not an e-mail address
MIXED_CASE_JOIN = re.compile(r"(?=.*[a-z])(?=.*[A-Z]).*[^\W_]_[^\W_]")   # 'Change_Me'
TRAILING_BANG = re.compile(r"[A-Za-z0-9]!+[\"')\]]*$")          # 'Sommer2024!': the symbol a password ends with
URL_PIECES = re.compile(r"[/?&=#;:@]+")
LETTER = re.compile(r"[^\W\d_]")
LETTER_DIGIT_CHANGES = re.compile(r"[^\W\d_](?=[0-9])|[0-9](?=[^\W\d_])")
DIGIT = re.compile(r"[0-9]")
BYTE = re.compile(r"25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]")
BYTE_GAP = re.compile(r"[\s,;:.()\[\]{}-]{1,3}")
DIGIT_GROUPS = re.compile(r"[0-9]+(?:[-. ][0-9]+)+")       # '4918-5627'
GROUPED_KEY = re.compile(r"[A-Z0-9]{3,6}(?:-[A-Z0-9]{4,6}){3,}")
MIXED_GROUP = re.compile(r"(?=[A-Z0-9]*[A-Z])(?=[A-Z0-9]*[0-9])[A-Z0-9]+")
PREFIXED_TOKEN = re.compile(r"[a-z]{2,8}_(?:[a-z]{2,8}_)?(?P<rest>[A-Za-z0-9]{12,})")
# A generated passphrase: two or more capitalised words and a number, joined by hyphens, dots or underscores
# ('Tansy-Vale-40', 'Thistle.Harbour.55')
PASSPHRASE = re.compile(r"[^\W\d_]{3,}(?P<sep>[-._])[^\W\d_]{3,}(?:(?P=sep)[^\W\d_]{3,})*(?P=sep)?[0-9]{1,4}")
IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])")
SLASHED_DATE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}/(?:19|20)?[0-9]{2}|(?:19|20)[0-9]{2}/[0-9]{1,2}/[0-9]{1,2}")
DATE = re.compile(r"(?:19|20)[0-9]{2}[-.][0-9]{1,2}(?:[-.][0-9]{1,2})?|[0-9]{1,2}[.][0-9]{1,2}[.](?:19|20)[0-9]{2}|"
                  r"[0-9]{1,3}(?:\.[0-9]{3})+")         # a date, a year and month, or a figure in thousands
BYTE_RUN_DOTTED = 16                  # written with dots, as addresses are ('10.0.0.1, 10.0.0.2'), a key's 16 bytes
NUMBER = re.compile(r"[0-9]+")
BYTE_RUN = 8
PASSCODE_DIGITS, PASSCODE_MAX, SIM_DIGITS, KEY_DIGITS_MIN = 6, 12, 4, 30
# Anywhere, a token shaped like a password (password_shaped): of STRONG_LENGTH characters or more, with lower- and
# upper-case letters and digits, and a symbol of STRONG_SYMBOL between them or STRONG_CHANGES changes or more
# between letters and digits ('K7#pQ2!xLm9', 'Zx9kq7Lm4'); or a common weak password with a symbol or
# WEAK_DIGITS_MIN digits
# ('Huawei@123', 'Changeme_123', 'Admin123'); or KEY_DIGITS_MIN digits in groups (a BitLocker recovery key)
STRONG_LENGTH, STRONG_CHANGES, WEAK_DIGITS_MIN = 8, 4, 3
STRONG_SYMBOL = re.compile(r"(?<=[A-Za-z0-9])[!#$%&*@^~?](?=[A-Za-z0-9])")    # inside: not a link's '](#
WEAK_SYMBOL = re.compile(r"[!#$%&*@^~?_.+=-]")
LOWER, UPPER = re.compile(r"[a-z]"), re.compile(r"[A-Z]")
SEPARATED = re.compile(r"[-_.]")          # a token of parts, as names are ('x86_64-Linux2'), is no such run
SLASH_AT = re.compile(r"[/@]+")
KEY_VALUE = re.compile(r"[=:,;]+")           # which ends a token here: 'PASSAGE=K7pQ2xLm9', '9F:86:D0:...' 
# Where a text changes between ASCII and a script written without spaces (Chinese, Japanese, Korean, full-width
# forms), a token ends: '密码:Huawei@123'
SCRIPT_BOUNDARY = re.compile(r"(?<=[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef])(?=[!-~])|"
                             r"(?<=[!-~])(?=[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef])")
# Names with digits that are no secret near a credential's name: a standard's number ('800-63B', '62443-4-2'), a
# GSMA or ETSI document ('SGP.22', 'NG.116'), an O-RAN document ('O-RAN.WG4.CUS.0-R003-v12.00'), a Huawei version
# ('V100R023C10SPC100'), a legal citation ('21(2)(d)'), a CELEX number, 'n-of-m'; and an e-mail address (EMAIL)
STANDARD_NUMBER = re.compile(r"[0-9]{1,6}(?:[-.][0-9]{1,6}){1,3}[A-Za-z]?|[A-Z]{1,5}\.[0-9]{1,3}(?:\.[0-9A-Z]+)*|"
                             r"o-ran\.[\w.-]+|"
                             r"v[0-9]{3}r[0-9]{3}(?:c[0-9]{2})?(?:sp[ch][0-9]{3})?|"
                             r"(?:rfc|iso|iec|en|fips|cve|cwe|ts|tr|sp|ieee|itu)-?[0-9]{2,6}(?:[-.:][0-9A-Za-z]+)*|"
                             r"[0-9]+(?:\([0-9a-z]{1,4}\)?)+|[0-9]{5}[A-Z][0-9]{4}|[0-9]+-(?:of|von|aus|de|di|z|av|van|sur)-[0-9]+(?:-[^\W\d_]+)?",
                             re.I)
# An identifier, of parts joined by '-', '_' or '.', each in one letter case with at most two changes between
# letters and digits ('svc-amf01', 'ENG_ADMIN_01', 'open5gs-webui'), two of them at most mixing the two: no password
# near a credential's name, nor base64 (not a word joined to a year: WORD_YEAR)
IDENTIFIER_PART = re.compile(r"[a-z]+(?:[0-9]+[a-z]*)?|[A-Z]+(?:[0-9]+[A-Z]*)?|[0-9]+(?:[a-z]+|[A-Z]+)?")
# A product, system or network function named with a number or a part ('Debian12', 'Windows11', 'SoftHSM2',
# 'srsRAN_4G', 'Open5GS-WebUI', 'gNB-DU1', 'sysmoISIM-SJA5'): no password near a credential's name
PRODUCT = re.compile(r"(?:debian|ubuntu|windows|rhel|centos|rocky|alma|fedora|suse|sles|alpine|python|java|node|"
                     r"golang|keycloak|kyber|dilithium|mongodb|postgres(?:ql)?|mysql|mariadb|redis|oracle|softhsm|"
                     r"sysmoisim|yubikey|pixel|galaxy|iphone|srsran|open5gs|free5gc|oai|openairinterface|ueransim|"
                     r"magma|k8s|kubernetes|gnb|enb|ng-enb|gnodeb|enodeb|dorado|oceanstor|wi-?fi|soc|audit|server)"
                     r"(?:[-_.]?[0-9][\w.-]*|[-_][\w.-]+)",
                     re.I)
# A number, serial or hash that its noun names ('order 4500123456', 'serial 5A3F0012', 'commit a3f9c21', 'host ID
# 0050569A3F2B', 'IMSI 001010000000001'), or a number with its unit ('200000 subscribers', '115200 baud'): no
# passcode; taken out before the tokens are judged
NAMED_NUMBER = re.compile(
    r"(?<![^\W\d_])(?:orders?|po|serials?|s/n|sn|ids?|accounts?|hotline|phone|tel|fax|ext\.?|extensions?|durchwahl|events?|"
    r"tickets?|incidencias?|incidentes?|chamados?|zg(?:\u0142|l)oszeni[ea]|st(?:\u00f6|o)rung|vorgang|"
    r"meldung|demande|richiesta|segnalazione|melding|(?:\u00e4|a)rende|talep|tiketti|tichet|\u0437[a\u0430]\u044f\u0432[k\u043a][a\u0430\u0438\u0443]|"
    r"cases?|invoices?|rfc|fips|iso|iec|ieee|nist|sp|alarms?|alerts?|nid|nci|ts|tr|eur|usd|chf|gbp|"
    r"contracts?|imsis?|iccids?|imeis?|msisdns?|tac|pci|arfcn|gscn|vlan|asn?|ports?|puertos?|build|commits?|sha|tags?|rev|"
    r"revisions?|cve|kb|bucket|codes|cpv|cnae|nace|naics|ateco|pkd|taric|ean|gtin)(?:\s+(?:no\.?|number|nr\.?|#|range|from))?(?:[\s:#]+[0-9A-Fa-f]|[0-9])[0-9A-Fa-f.-]*(?![\w-])"
    r"(?:\s+(?:to|bis|\u00e0|a|al|-)\s+[0-9A-Fa-f][0-9A-Fa-f.-]*(?![\w-]))?|"
    r"(?<![\w.])(?:[0-9]{1,3}(?:[.,'][0-9]{3})+|[0-9]+)(?=\s+(?:s|ms|secs?|seconds?|minutes?|hours?|days?|bytes?|"
    r"[kmgt]i?b|baud|bps|eur|usd|gbp|chf|st\u00fcck|stk|pcs|pieces|cards?|karten|cartes|tarjetas|kart\w*|[k\u043a][a\u0430][p\u0440][t\u0442]\w*|k(?:\u00e1|a)rty\w*|kaart\w*|karet|schede|cart(?:\u00f5|o)es|(?:de\s+)?carduri|kortti\w*|\u0628\u0637\u0627\u0642\w*|\u05db\u05e8\u05d8\u05d9\u05e1\w*|kort|"
    r"units?|unidades|"
    r"jpy|cny|subscribers?|subscriptions?|users?|sims?|ues?|devices?|sites?|cells?|licen[cs]es?|sessions?|"
    r"connections?|requests?|iterations?|rounds?|times|attempts?|characters?|chars?|digits?|bits?)(?![^\W\d_])|"
    r"\s*[\u5f20\u5f35\u679a\u53f0\u4e2a\u500b\u4ef6\u5957\u540d\u4eba\u672c\u90e8\u7247\u5757\u584a\u5e74\u6708\u65e5])", re.I)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
COMPANY = re.compile(r"[A-Z][a-z]{2,}(?:[+&][A-Z][a-z]{2,})+")      # 'Giesecke+Devrient', 'Rohde&Schwarz'
PASSWORD_AT_END = re.compile(r"(?<![A-Za-z0-9])(?:pass(?:words?|wd|phrases?|codes?)|pwd|pw|psk|passwort|kennwort)"
                             r"(?:[^:=\n]{0,40}?\s*[:=]\s*|\s+is\s+)"
                             r"[\"'\u201c\u2018]?(?P<word>[A-Za-z]{6,}|[0-9]{4,})[\"'\u201d\u2019]?"
                             r"(?:[\s.!]*$|\s*[,;(])", re.I)
DESCRIBING_WORDS = frozenset((
    "withheld redacted removed omitted rotated changed unchanged hashed salted encrypted stored managed required "
    "enforced disabled enabled individual personal random randomised randomized generated provided supplied separate "
    "separately elsewhere unknown expired optional shared unique strong complex temporary default confidential "
    "private protected policy policies length vaulted escrowed keepass bitwarden lastpass cyberark hashicorp "
    "keychain dashlane delinea thycotic").split())
# A value given right after a password's, passphrase's, PIN's, code's or key's own name (BOUND_NAME, in several
# languages; H21-2, H21-3, H22-2): after ':', '=', '->', a dash or a verb ('is', 'est', 'è', 'ist', 'är', 'lautet';
# BOUND_SEPARATOR, an adverb allowed: 'is literally'), prepositions and words between (BOUND_LEAD_FOR: 'password for
# everything is Otterburn', 'hasło do panelu: jaskółka'), or after a space alone ('Passwort Elbsandstein'); the value
# runs to the clause's end (CLAUSE_END). It is refused unless its first word describes or points (SLOT_WORDS: 'see',
# 'rotated', 'in', 'held', 'KeePass'; DESCRIBING_END: 'quarterly', 'zurückgesetzt', 'réinitialisé'), is a count
# ('0 defaults left'), a number with its unit ('14 characters'), an acronym ('FIPS'), a word in CJK script, a URL,
# path, e-mail address, placeholder, scheme's or standard's name or record ID. After a space alone, or after other words and ':' (BOUND_LEAD: 'password resets:
# the service desk') or a verb (BOUND_LEAD_VERB: 'le mot de passe provisoire est Tournesol'), only a quoted value, a
# token with a digit or symbol, or a capitalised word is refused, and after a space alone a lower-case word ending
# its clause that is no participle ('pass haversack', not 'password rotated'). A bare 'key', 'secret' or 'Wi-Fi'
# names a value only before ':' or '=' where Wi-Fi, a router or RADIUS is named and PGP is not (WIFI_CONTEXT: 'Wi-Fi
# LabCore, key: gorse-and-heather'), 'Wi-Fi' only before '=' ('wifi = seabreeze'). A name in Japanese or Korean may
# carry its particle, which stands for ':' ('パスワードは momiji です')
BOUND_NAME = re.compile(
    r"(?:(?<![^\W_])(?=[^\W\d_])(?:(?P<own>pass\s+(?:phrases?|codes?)|pass(?:words?|wd|phrases?|codes?)?|p[@4]ss(?:words?|wd)?|pa[s5$]{2}w[o0]rds?|p\.\s?w\.|pw\.|passwd|pswd|pwd|pw|pasahitz\w*|parolu|ciec|mk(?=\s*(?:wi-?fi\s*)?:)|fraza\s+has\u0142a|Fraza\s+has\u0142a|fraza\s+hasla|Fraza\s+hasla|frasa\s+sandi|Frasa\s+sandi|log\s?in\s+with|(?:keepass(?:xc)?|bitwarden|lastpass|1password|dashlane)\s+master(?=\s+is\s|\s*[:=])|einloggen\s+mit|anmelden\s+mit|paswoord(?:en)?|la\s+contra|[\u0648\u0628]?(?:\u0627\u0644)?\u0628\u0627\u0633\u0648{1,2}\u0631\u062f|[\u0648\u0628]?(?:\u0627\u0644)?\u0645\u0648\u062f\u064a\u0628\u0627\u0633|[\u0648\u0641\u0628]?\u0643\u0644\u0645\u0629\s+(?:\u0627\u0644)?(?:\u0633\u0631|\u0645\u0631\u0648\u0631)|sandi(?:nya|nye)|kata\s+sandi|Kata\s+sandi|kata\s+laluan|Kata\s+laluan|\u0631\u0645\u0632\s+\u0639\u0628\u0648\u0631|\u0631\u0645\u0632\u0639\u0628\u0648\u0631|\u067e\u0633\u0648\u0631\u062f|\u06af\u0630\u0631\u0648\u0627\u0698\u0647|\u06a9\u0644\u0645\u0647\s+\u0639\u0628\u0648\u0631|\u06a9\u0644\u0645\u0647\u06cc\s+\u0639\u0628\u0648\u0631|c\u1ee5m\s+m\u1eadt\s+kh\u1ea9u|C\u1ee5m\s+m\u1eadt\s+kh\u1ea9u|cum\s+mat\s+khau|Cum\s+mat\s+khau|\u0639\u0628\u0627\u0631\u0629\s+\u0627\u0644\u0645\u0631\u0648\u0631|\u092a\u093e\u0938\u092b\u0930\u091c|c\u00f3digo\s+de\s+acceso|C\u00f3digo\s+de\s+acceso|codigo\s+de\s+acceso|Codigo\s+de\s+acceso|kod\s+dost\u0119pu|Kod\s+dost\u0119pu|kod\s+dostepu|Kod\s+dostepu|codice\s+di\s+accesso|Codice\s+di\s+accesso|c\u00f3digo\s+de\s+acesso|C\u00f3digo\s+de\s+acesso|"
    r"salauslause|Salauslause|fraza\s+de\s+acces|Fraza\s+de\s+acces|\u03c6p\u03ac\u03c3\u03b7\s+\u03c0p\u03cc\u03c3\u03b2a\u03c3\u03b7\u03c2|\u03a6p\u03ac\u03c3\u03b7\s+\u03c0p\u03cc\u03c3\u03b2a\u03c3\u03b7\u03c2|"
    r"pa(?:s|ss)o?w[o0]?r?o?ds?|passw\.|kennw\.|m\.d\.p\.?|parolina|[^\W\d_]{2,}(?:pa(?:ss|\u00df)|kenn)w[o\u00f6]rt|"
    r"cvv2?|cvc2?|frase\s+semilla|herstelzin|phrase\s+de\s+r(?:\u00e9|e)cup(?:\u00e9|e)ration|frase\s+di\s+recupero|"
    r"wiederherstellungsphrase|(?:wi-?fi|wlan)-?code|(?:wi-?fi|kablosuz\s+a\u011f)\s+(?:anahtar|\u015fifre)\w*|\u043f[a\u0430][p\u0440][o\u043e]\u043b\u044c[h\u043d]\w*\s+\u0444[p\u0440][a\u0430]\u0437\w*|"
    r"[k\u043a][o\u043e]\u0434[o\u043e][b\u0432]\w*\s+(?:\u0444[p\u0440][a\u0430]\u0437|[c\u0441]\u043b[o\u043e][b\u0432])\w*|"
    r"parola\s+chiave|frase\s+de\s+seguran(?:\u00e7|c)a|chave\s+(?:d[oa]\s+)?(?:wi-?fi|wlan|wpa2?)|(?:wlan|wi-?fi)-?sleutel|(?:klucz|[k\u043a]\u043b\u044e\u0447)\s+(?:wi-?fi|wlan)|frase\s+(?:de\s+recuperaci(?:\u00f3|o)n|secreta)|"
    r"pa(?:ss|\u00df)w[o\u00f6]rt(?:er)?|kennw[o\u00f6]rt(?:er)?|geheimzahl|geheimnis|countersigns?|watchwords?|mot\s+d['\u2019]\s*passe|(?:mot|phrase)\s+de\s+passe|"
    r"contrase(?:\u00f1|n)as?|senhas?|palavra-passe|wachtwoord(?:en)?|has(?:\u0142|l)o|l(?:\u00f6|o)senord(?:et)?|"
    r"adgangskoden?|passord(?:et)?|salasana|jelsz(?:\u00f3|o|ava)|heslo|geslo|lozinka|parol(?:\u0103|a|e)|parool|"
    r"frase\s+de\s+paso|frase\s+de\s+contrase(?:\u00f1|n)a|wachtw?o?o?r?d?zin|kulcsmondat|jelsz(?:\u00f3|o)mondat|"
    r"heslov(?:\u00e1|a)\s+fr(?:\u00e1|a)ze|salasanalause|l(?:\u00f6|o)senfras|l(?:\u00f6|o)senordsfras|adgangsfrase|passordfrase|"
    r"lykilor(?:\u00f0|d)|wagwoord|nenosiri|neno\s+la\s+siri|\u092a\u093e\u0938\u0915\u094b\u0921|"
    r"\u09aa\u09be\u09b8\u0993\u09af\u09be\u09b0\u09a1|"
    r"(?:\u015f|s)ifre(?:si)?|(?:wlan|wi-?fi)-?avain|chiave\s+(?:wi-?fi|wlan|wpa2?)|clave|"
    r"cl\u00e9(?:\s+(?:wi-?fi|wpa2?|wlan))?|(?:recovery|seed|secret)\s+phrase|phrase\s+secr[e\u00e8]te|"
    r"requirepass|masterauth|psk|(?:left|right)psk|key\s+content|mdp|digicode|auth[_-]?pass|rootpw|authtok|"
    r"(?:snmp[\s-]+)?(?:community|communaut(?:\u00e9|e)|comunidad|comunit(?:\u00e0|a))(?:\s+strings?)?|(?:snmp[\s-]+)?(?:read-only|read-write|read|write|ro|rw|comm|get|set)[\s-]+strings?|(?:(?:snmp|v[123]c?|ro|rw)[\s-]+)+comm|snmp\s+r[ow](?=\s*[:=])|(?:shared|radius|tacacs\+?|enable|client)\s+secret|"
    r"\u043f[\u0430a][\u0440p][\u043eo]\u043b\u044c?|\u043f[\u0430a][\u0441c][\u0441c]|hase(?:\u0142|l)ko|s(?:\u00e9|e)same|(?:access|security|safe|magic|memorable|code\s?)[\s-]?words?|passkeys?|(?:security|secret|memorable)\s+answers?|(?:\u0161|s)ifr[aeiu]|geheimw(?:o|\u00f6)rt(?:er)?|(?:authentication|auth|authorisation|authorization)[\s-]codes?|clavecita|senhazinha)|(?P<sim>PINs?[12]?|PUKs?[12]?|ADM[1-4]?|CHV[12]|\u043f\u0438[h\u043d]|\u043f\u0443[k\u043a]|\u0648?\u0627\u0644\u0628(?:\u064a?\u0646|\u0648?\u0643))|"
    r"(?:wi-?fi|wlan|wpa[23]?|network(?:\s+security)?|security|sha|aes|des|auth|priv|pre-?shared|host|zip|archive|radius(?:-server)?|"
    r"tacacs\+?|server|shared)[\s-]?keys?|(?P<described>api[\s-]?(?:sleutel|chiave|klucz|nyckel|n(?:\u00f8|o)kkel|avain|anahtar\w*|token|jeton)|"
    r"(?:chiave|klucz|chave|clave|cl(?:\u00e9|e)|[k\u043a]\u043b\u044e\u0447)\s+(?:d[eoa']\s*)?api|jeton|"
    r"t[o\u043e]\u043a[e\u0435]\u043d|(?:licen[cs]e|product|activation|api|access|private|master|repo(?:sitory)?|restic|borg|unseal|enrol?ment|"
    r"encryption|signing|session|client|subscriber)[\s-]?keys?|unseal[\s-]?shares?(?:\s*#?[0-9]{1,2})?)|(?:wlan-?|wi-?fi-?|netzwerk-?)?schl(?:\u00fc|ue)ssel|"
    r"(?:door|gate|lock|alarm|access|backup|recovery|scratch|rescue|mfa|2fa|entry|release|unlock|unblock|bridge|t\u00fcr|tor|zugangs|zutritts)"
    r"[\s-]?codes?|code\s+d['\u2019]acc[e\u00e8]s|identified\s+by|(?:verification|callback|challenge)\s+(?:words?|phrases?)|"
    r"(?:protected|locked|secured)\s+with|encrypted\s+with|"
    r"(?P<bare>keys?|wi-?fi|secret))(?![^\W_])(?!-(?![kc\u043a][o\u043e][d\u0434])[^\W\d_]{3})|"
    r"(?P<cjk>\u30d1\u30b9\u30ef\u30fc\u30c9|\u30d1\u30b9\u30ad\u30fc|\u30d1\u30b9\u30b3\u30fc\u30c9|\u3071\u3059\u308f\u30fc\u3069|\U0001f511|\U0001f510|\U0001f5dd|\U0001f513|\U0001f512|"
    r"(?:wi-?fi|wlan)\u30ad\u30fc|api\s*\u4ee4\u724c|api\s*\ud0a4|(?:wi-?fi|\uc640\uc774\ud30c\uc774)\s*\ud0a4|"
    r"\u5bc6\u7801|\u5bc6\u78bc|\u5408\u8a00\u8449|\u5bc6\u94a5|\u5bc6\u9470|\u56e2\u4f53\u540d|\u5718\u9ad4\u540d|\ube44\ubc00\ubc88\ud638|\uc554\ud638|\ube44\ubc88|\u30d1\u30b9\u30d5\u30ec\u30fc\u30ba|\u53e3\u4ee4|\u63d0\u53d6\u7801|\ud328\uc2a4\ud504\ub808\uc774\uc988|\ud328\uc2a4\uc6cc\ub4dc|\u0e27\u0e25\u0e23\u0e2b\u0e2a\u0e1c\u0e32\u0e19|facal-faire|Facal-faire|kupuhipa|Kupuhipa|\u0795\u0790\u0788\u0791|\u0795\u0782|\u067e\u0627\u0633\u0648\u0631\u0688|\u067e\u0627\u0633 \u0648\u0631\u0688|\u0b2a\u0b28|\u09aa\u09be\u099b\u09f1\u09f0\u09a1|\u0648\u0634\u06d5\u06cc \u0646\u0647\u06ce\u0646\u06cc|\u0b2a\u0b3e\u0b38\u0b71\u0b3e\u0b30\u0b21|\u067e\u0627\u0633\u0648\u0631\u068a|\u1218\u1215\u1208\u134a \u1243\u120d|paroly|Paroly|\u067e\u0627\u0631\u0648\u0644\u0649|\u067e\u0627\u0631\u0648\u0644|igama lokugqitha|Igama lokugqitha|\u05e4\u05d0\u05e8\u05d0\u05dc|\u0995\u09ae\u09bf\u0989\u09a8\u09bf\u099f\u09bf \u09b7\u099f\u09f0\u09bf\u0982|okwu nzuzo|Okwu nzuzo|loynior\u00f0|Loynior\u00f0|\u0caa\u0cbe\u0cb8\u0cb5\u0cb0\u0ca1|\u0caa\u0ca8|\u0caa\u0caf\u0cc1\u0c95|\u0d2a\u0d3e\u0d38\u0d35\u0d47\u0d21|\u0d2a\u0d3f\u0d7b|\u0d2a\u0d3f\u0d2f\u0d15\u0d46|\u1005\u1000\u102c\u1038\u101d\u1000|\u1015\u1004\u1014\u1015\u102b\u1010|c\u044bpc\u04e9\u0437\u04af|C\u044bpc\u04e9\u0437\u04af|c\u044bpc\u04e9\u0437|C\u044bpc\u04e9\u0437|\u067e\u0627\u0633\u0648\u0631\u0689|furaha sirta|Furaha sirta|iphasiwedi|Iphasiwedi|\u12e8\u12ed\u1208\u134d \u1243\u1209|\u12e8\u12ed\u1208\u134d \u1243\u120d|\u1352\u1295|\u1352\u12e9\u12ac|cyfrinair|Cyfrinair|\u0aaa\u0abe\u0ab8\u0ab5\u0ab0\u0aa1|\u0aaa\u0abf\u0aa8|\u0aaa\u0ac0\u0aaf\u0a95|kalmar wucewa|Kalmar wucewa|\u0563\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c\u0568|\u0533\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c\u0568|\u0563\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c|\u0533\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c|\u049b\u04b1\u043f\u0438\u044f c\u04e9\u0437i|\u049a\u04b1\u043f\u0438\u044f c\u04e9\u0437i|\u049b\u04b1\u043f\u0438\u044f c\u04e9\u0437|\u049a\u04b1\u043f\u0438\u044f c\u04e9\u0437|\u1796\u17b6\u1780\u1799\u179f\u1798\u1784\u17b6\u178f|\u043dyy\u0446 \u04afr|Hyy\u0446 \u04afr|\u0a2a\u0a3e\u0a38\u0a35\u0a30\u0a21|\u0a2a\u0a3f\u0a28|\u0a2a\u0a40\u0a2f\u0a15|\u0db8\u0dbb\u0db4\u0daf\u0dba|\u0c2a\u0c28|\u0c2a\u0c2f\u0c42\u0c15|\u0c2a\u0c38\u0c35\u0c30\u0c21|paroli|Paroli|\u1ecdr\u1ecd a\u1e63\u00edn\u00e0|\u1eccr\u1ecd a\u1e63\u00edn\u00e0|UAP|\u09aa\u09bf\u0987\u0989\u0995\u09c7|\u09aa\u09bf\u09a8)"
    r"(?:\u306f|\ub294|\uc740|\u3092|\u4e3a|\u70ba|\u662f|(?:\u641e|\u6539|\u8bbe|\u8a2d|\u6362|\u63db)?\u6210|\u8bbe\u4e3a|\u8a2d\u70ba|\u6539\u4e3a|\u6539\u70ba)?)"
    r"(?!\s+(?:pairs?|ids?|hierarch|management|length|size|ceremon|rotation|usage|type|format|fingerprint))", re.I)
BOUND_LEAD = re.compile(r"(?:\s+[^\s:=,;()]+){1,4}?(?=\s*[:=](?:\s|$))")
BOUND_VERB = r"(?:is|was|ist|war|est|este|c['\u2019]est|\u00e8|\u00e9|es|\u00e4r|er|lautet|\u09b9\u09c8\u099b\u09c7|\u0b39\u0b47\u0b09\u0b1b|b\u1ee5|kay|ndi|mooy|ha'e|ezali|\u0787\u0786|nya\u00e9ta|y\u025b|h\u00e8|iyo|heet|yaa|ima)"
LEAD_WORD = r"(?:[^\s:=,;()]|:(?=[^\W\d_]))+"        # a word, 'VPN:en' too
BOUND_LEAD_FOR = re.compile(r"\s+(?:(?:for|of|on|at|to|in|with|from|f\u00fcr|auf|im|bei|am|beim|zum|zur|des|der|den|"
                            r"dem|du|de|au|aux|pour|para|por|pentru|kan|ng|del|della|dello|da|di|van|voor|do|dla|f\u00f6r|till?|p\u00e5|k|w|\u0432|"
                            r"[\u043eo][\u0442t]|\u0434[\u043bl]\u044f)(?:\s+" + LEAD_WORD + r"){1,7}?|"
                            r"(?:dell|dall|nell|sull|all|d|l)['\u2019]" + LEAD_WORD + r"(?:\s+" + LEAD_WORD + r"){0,4}?)"
                            r"(?=(?:\s*\([^()\n]{1,40}\))?\s*(?:[:=]|->)|\s+(?:" + BOUND_VERB[3:-1] + r"|to|on|je)\s)", re.I)
BOUND_LEAD_VERB = re.compile(r"(?:\s+[^\s:=,;()]+){1,2}?(?=\s+" + BOUND_VERB + r"\s)", re.I)
BOUND_SEPARATOR = re.compile(r"\s*(?:[:=]|->|=>|\u2192)\s*|\s+(?:" + BOUND_VERB[3:-1] + r"|equals)\s*:?\s+"
                             r"(?:(?:now|still|set\s+to|literally|just|simply|currently|actually|jetzt|noch|einfach|ora|"
                             r"ahora|maintenant|nu|teraz)\s+)?|\s+[-\u2013\u2014]\s+|\s*,\s*which\s+(?:is|was)\s+", re.I)
# What protects a file, in several languages ('protected by Oriel7Basin', 'protégé par Aubépine47', 'ist mit
# Lindenallee-12b geschützt', 'the PDF is protected; open it with Caraway2026'): a value judged as near a password's
# own name (context_secret), so that 'protected by MFA', 'protegida por contraseña' and 'mit TLS 1.3 geschützt' stay
# answers
PROTECTED = (re.compile(r"(?<![^\W_])(?P<name>(?:protected|secured|locked)\s+by|(?:opens|unlocks|decrypts)\s+with|binds?\s+(?:as\s+)?(?:\S{1,80}\s+)?with|prot(?:\u00e9|e)g(?:\u00e9|e)e?s?\s+par|"
                        r"protett[oaie]\s+(?:con|da)|protegid[oa]s?\s+(?:com|con|por)|beveiligd\s+met|"
                        r"(?:chronion|zabezpieczon)[yae](?:\s+has(?:\u0142|l)em)?|gesch(?:\u00fc|ue)tzt\s+mit|"
                        r"(?:kennwort|passwort)schutz|\u0437[a\u0430]\u0449\u0438\u0449\w*(?:\s+\u043f[a\u0430][p\u0440][o\u043e]\u043b\w*)?)"
                        r":?\s+(?P<value>[^\s,;]+)", re.I),
             re.compile(r"(?<![^\W_])mit\s+(?P<value>[^\s,;]+)\s+(?P<name>gesch(?:\u00fc|ue)tzt|gesichert|"
                        r"verschl(?:\u00fc|ue)sselt)(?![^\W_])", re.I),
             re.compile(r"(?<![^\W_])(?:protected|locked|encrypted|secured|verschl(?:\u00fc|ue)sselt|gesch(?:\u00fc|ue)tzt|"
                        r"prot(?:\u00e9|e)g(?:\u00e9|e)e?s?|chiffr(?:\u00e9|e)e?s?|cifrad[oa]s?|protegid[oa]s?|protett[oaie]|"
                        r"versleuteld|beveiligd|protection)(?:[\W_]+[^\W_]+){0,6}?[\W_]+(?P<name>(?:open\w*|unlock\w*|(?:\u00f6|oe)ffn\w*|"
                        r"ouvr\w*|abr[aei]\w*|apr[aei]\w*)(?:\s+(?:it|them|the\s+[^\W\d_]+|es|sie|ihn|le|la|les|lo|o))?"
                        r"\s+(?:with|using|mit|avec|com|con|met)|uses|using)\s+(?P<value>[^\s,;]+)", re.I))
# Where a password's name in Polish or Finnish takes 'to' or 'on' for 'is' ('hasło to Wiewiórka', 'salasana on
# mustikka'; COPULA_NAMES, COPULA), and a word that qualifies a password before ':' (LEAD_QUALIFIERS: 'Wachtwoord
# wifi: tulpenveld', 'admin password VPN: x'), as capitalised words and acronyms do: its value is judged as after ':'
COPULA_NAMES = re.compile(r"has(?:\u0142|l)o|salasana|heslo|klucz\s+\S+", re.I)
COPULA = re.compile(r"\s+(?:to|on|je)\s+")
LEAD_QUALIFIERS = frozenset("wifi wi-fi wlan vpn admin root ssh db database router lab portal omc ops guest sftp ftp "
                            "smtp mail web webui gui bmc idrac ipmi ont switch firewall server jump host jumphost "
                            "shared default new initial temporary contains \u0648\u0627\u06cc \u0641\u0627\u06cc \u0648\u0627\u06cc\u0641\u0627\u06cc \u0645\u0647\u0645\u0627\u0646 \u0627\u062f\u0645\u06cc\u0646 \u0648\u0627\u064a \u0641\u0627\u064a tamu".split())
# Words that set a password to a value ('was changed to Pinecone', 'reset to butterscotch'; SET_TO)
SET_TO = re.compile(r"(?:changed|set|reset|updated|rotated|ge\u00e4ndert|gesetzt|chang\u00e9|cambiad[oa])\s+"
                    r"(?:to|auf|en|a|in)\s+", re.I)
# ... or before the name, then 'to' after it ('reset the admin password to X'; SET_BEFORE, TO_VALUE)
SET_BEFORE = re.compile(r"(?<![^\W_])(?:set|sets|reset|resets|changed?|changes|updated?|rotated?|ge(?:\u00e4|ae)ndert|"
                        r"gesetzt)(?![^\W_])", re.I)
SET_REACH = 30
# A word spelled out, four letters or more apart by one hyphen, dot, space or underscore, with a dot after
# its last ('p-a-s-s-w-o-r-d', 'P.A.S.S.:'): its letters joined, it is read as a name again
SPELLED = re.compile(r"(?<![^\W_])[^\W\d_](?:[-. _][^\W\d_]){3,}\.?(?![^\W_])")
# ... and a value spelled out, its letters and digits so apart ('G-R-4-N-I-T-E-7-7', 'G R 4 N I T E 7 7': told_in_pieces)
SPELLED_VALUE = re.compile(r"(?<![^\W_])[^\W_](?:[-. _][^\W_]){3,}\.?(?![^\W_])")
TO_VALUE = re.compile(r"\s+(?:to|auf)\s+", re.I)
# A password's name after 'use', 'using', 'with' or 'set' (USED_BEFORE): its value after a space alone is judged as
# after ':' ('use password persimmon for the test tenant')
USED_BEFORE = re.compile(r"(?<![^\W_])(?:use|uses|using|with|set)\s+(?:(?:the|a|an)\s+)?$", re.I)
USED_REACH = 20
CLAUSE_END = re.compile(r"[,;()\n]|\s+(?:and|und|et|y|e)\s+|\.(?:\s|$)")
FIRST_WORD = re.compile(r"[\"'\u201c\u2018`\u00ab\u201e\u2039]*\s*(?P<word>[^\s\"'\u201d\u2019`\u00bb\u203a]+)"
                        r"[\"'\u201d\u2019`\u00bb\u203a]*")
QUOTED = re.compile(r"[\"'\u201c\u2018`\u00ab\u201e\u2039]")
QUOTED_WORDS = re.compile(r"[\"'\u201c\u2018`\u00ab\u201e\u2039]\s*(?P<words>[^\W\d_]+(?:\s+[^\W\d_]+){2,9})\s*"
                          r"[\"'\u201d\u2019`\u00bb\u201c\u203a]")
COUNT = re.compile(r"[0-9]{1,3}\s+[^\W\d_]")          # '0 defaults left', '3 of 4 tests'
# A month, or a month and year, in one of several languages ('March', 'maart 2025', 'Mai 2025'): a date, not a value
MONTH_NAME = (
    r"(?:jan(?:uary|uar|vier|eiro|uari)?|feb(?:ruary|ruar|ruari|rero|braio)?|f[e\u00e9]vrier|fevereiro|"
    r"mar(?:ch|s|zo|[c\u00e7]o)?|m[a\u00e4]rz|maart|apr(?:il|ile)?|avril|abril|ma(?:y|i|j|yo|ggio|io)|mei|jun[ei]?|"
    r"juin|junio|junho|giugno|jul(?:y|i)?|juillet|julio|julho|luglio|aug(?:ust|ustus|usti)?|ao[u\u00fb]t|agosto|"
    r"sep(?:t|tember|tembre|tiembre)?|settembre|setembro|o[ck]t(?:ober|obre|ubre)?|ottobre|outubro|"
    r"nov(?:ember|embre|iembre|embro)?|de[cz](?:ember|embre|embro)?|d[e\u00e9]cembre|diciembre|dicembre)")
MONTH = re.compile(MONTH_NAME, re.I)
MONTH_YEAR = re.compile(r"(?<![^\W_])" + MONTH_NAME + r"\.?\s+(?:19|20)[0-9]{2}(?![\w-])", re.I)
NUMBER_WITH_UNIT = re.compile(r"[0-9]+\+?[\s-]?(?:characters?|chars?|7arf|a7ruf|7ruf|7rouf|digits?|days?|months?|years?|hours?|minutes?|"
                              r"h|d)(?![^\W_])", re.I)
# A rule in any language: a word in lower case and up to two more, a small number and a word ('almanco 14 carateri',
# 'uray 14 a karakter', 'indi magnubo sa 14 ka karakter')
POLICY_VALUE = re.compile(r"(?:[^\W\d_]+\s+){1,3}[0-9]{1,3}\s+(?:[^\W\d_]{1,3}\s+)?[^\W\d_]{3,}")
LABEL_COLONS = ":\uff1a\u1366"                   # a colon, a fullwidth one, Ethiopic's preface colon
# Taken out before the tokens near a credential's name are judged: a telephone number in international form ('+49 89
# 1234 5678'; PHONE), and a PGP key's ID where PGP or GPG is named ('PGP key 0x4A2B9C1D', read without its '0x';
# PGP_KEY_ID); a series' member is no password either ('admin01 to admin05', 'jumphost01 and jumphost02'; series)
CLOCK_TIMES = re.compile(r"(?<![\w:.])[0-2]?[0-9]:[0-5][0-9](?:\s*[-\u2013]\s*[0-2]?[0-9]:[0-5][0-9])?(?![\w:.])")  # '02:00-05:00'
HOST_PORT = re.compile(r"(?<![\w.:@/-])[A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*)+:[0-9]{2,5}(?![\w.:])")   # 'smtp.internal:587'
SECTION = re.compile(r"(?<![\w.])(?:ss?|sec|art|para)\.\s?[0-9]+[a-z]?(?:\([0-9a-z]{1,4}\))+", re.I)   # 's.135(4)'
PHONE = re.compile(r"(?<![\w+])\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,5}\)?){2,6}(?!\w)")
PGP_WORD = re.compile(r"pgp|gpg", re.I)
PGP_KEY_ID = re.compile(r"(?<!\w)(?:0x)?(?=[0-9]*[A-Fa-f])(?=[A-Fa-f]*[0-9])(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{8})(?!\w)")
# ... or written the national way: after a word that says so ('on', 'call', 'unter', 'тел.'; CUED_PHONE: 'ask the
# site manager on 0171 2345678', 'llamar a seguridad, 912 345 678'), or starting with 0 (ZERO_PHONE: '03-1234-5678'),
# PHONE_DIGITS to PHONE_DIGITS_MAX digits in all (phone_blanked)
CUED_PHONE = re.compile(r"(?<![^\W_])(?:(?:on|at|unter|au|al|under)\s+|(?:call|ring|phone|tel\.?|t\u00e9l\.?|telefon\w*|line|"
                        r"hotline|anrufen|appeler|llamar|ligar|chiamare|bellen|volat|zavolat|telefone|tel(?:\u00e9|e)fono|\u7535\u8bdd|\u96fb\u8a71|"
                        r"\uc804\ud654|[t\u0442][e\u0435]\u043b\.?)[^0-9\n;]{0,30}?)"
                        r"(?<![\w.,/+-])(?P<number>\(?[0-9]{1,4}\)?(?:[ /.-][0-9]{1,8}){1,4}|0[0-9]{8,12})(?![\w/-])", re.I)
ZERO_PHONE = re.compile(r"(?<![\w.,/+#*-])(?P<number>\(?0[0-9]{1,4}\)?(?:[ /.-][0-9]{1,8}){1,4}|0[0-9]{8,12})(?![\w/-])")
PHONE_DIGITS, PHONE_DIGITS_MAX = 9, 13
EXTENSION = re.compile(r"(?<![^\W_])(?:(?:ask|call|ring|phone)\s+[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?\s+on|\u0e15\u0e2d|\u0e42\u0e17\u0e23|call|ring|ext\.?|extension|local|lokal|lokalno|durchwahl|poste|interno|anexo|ramal|linka|linku|klapka|"
                       r"\u5185\u7ebf|\u5185\u7dda|\u5206\u673a|\u5206\u6a5f|\ub0b4\uc120|(?:\u0627\u0644)?\u062a\u062d\u0648\u064a\u0644\u0629|\u0627\u06cc\u06a9\u0633\u0679\u06cc\u0646\u0634\u0646|\u062f\u0627\u062e\u0644\u06cc)\s*(?P<number>[0-9]{3,5})(?![\w/-])",
                       re.I)                          # 'Phone PIN reset: call 4400'
# A meeting's ID ('Zoom meeting ID 843 2211 9087') and opening hours ('Gate 3 open 0700-1800', where a word says hours;
# CLOCK_TIMES always): no code's number (schedule_blanked)
MEETING_ID = re.compile(r"(?<![^\W_])(?:meeting\s+(?:id|number|no\.?)|meeting|zoom|webex|teams|conference\s+id|"
                        r"(?:besprechungs|meeting|konferenz)-?id|id\s+de\s+(?:la\s+)?r(?:\u00e9|e)union|"
                        r"id\s+(?:de\s+)?(?:la\s+)?reuni(?:\u00f3|o)n|id\s+(?:della\s+)?riunione)\s*:?\s*"
                        r"(?P<number>[0-9]{3,4}(?:[ -][0-9]{3,4}){1,3})(?![\w/-])", re.I)
OPEN_HOURS = re.compile(r"(?<![\w.,/-])(?:[01][0-9]|2[0-3])[0-5][0-9]\s*[-\u2013]\s*(?:[01][0-9]|2[0-3])[0-5][0-9](?![\w/-])")
# An Indian postal PIN code ('PIN code of Pune site is 411057', 'postal PIN code 411057'): no code's number
POSTAL_PIN = re.compile(r"(?<![^\W_])(?:postal\s+PIN(?:\s*code)?|PIN\s*code\s+of\s+[A-Z][\w-]*(?:\s+[\w-]+){0,3}?(?:\s+is)?|"
                        r"\u092a\u093f\u0928 \u0915\u094b\u0921|\u0aaa\u0abf\u0aa8 \u0a95\u0acb\u0aa1|\u0a2a\u0a3f\u0a28 \u0a15\u0a21|\u0c2a\u0c28 \u0c15\u0c21|\u0caa\u0ca8 \u0c95\u0ccb\u0ca1)"
                        r"\s*:?\s*(?P<number>[1-9][0-9]{2}\s?[0-9]{3})(?![\w-])")
# A postal code: five digits before a town's name ('38440 Wolfsburg'), or after its label ('CEP 11015-900')
POSTCODE_TOWN = re.compile(r"(?<![\w.,/-])(?:[0-9]{5}|[0-9]{5}-[0-9]{3})(?=\s+[A-Z][^\W\d_]{2,})")
POSTCODE = re.compile(r"(?<![^\W_])(?:cep|plz|cp|c\u00f3digo\s+postal|code\s+postal|postcode|zip(?:\s+code)?)\s*:?\s*"
                      r"[0-9]{4,5}(?:-[0-9]{3,4})?(?![\w-])", re.I)
SIX_DIGITS = re.compile(r"(?<![\w.,/-])[1-9][0-9]{2}\s?[0-9]{3}(?![\w/-])")   # the other PIN codes a text lists
# A Polish tax number after 'NIP' (ten digits: 'NIP 123-456-78-90'), not the Mexican NIP, a PIN
NIP_TAX = re.compile(r"(?<![^\W_])(?:NIP|REGON|KRS)(?:\s+[^\W\d_]+)?\s*:?\s*(?P<number>[0-9]{3}-?[0-9]{2,3}-?[0-9]{2,3}-?"
                     r"[0-9]{0,5})(?![\w-])")
HOURS_WORD = re.compile(r"(?<![^\W_])(?:open\w*|hours?|ouvert\w*|ge(?:\u00f6|oe)ffnet|\u00f6ffnungszeit\w*|abiert\w*|"
                        r"apert\w*|aberto|geopend|\u00f6ppe\w*|otwart\w*|a(?:\u00e7|c)(?:\u0131|i)k|uhr|horaire\w*|horario\w*|"
                        r"orari\w*)(?![^\W_])", re.I)
# An entry or vault in a password manager named by its title ('KeePass entry OMC-Root-2026', 'Bitwarden item ops-2025',
# '1Password vault 5G-Lab'): a pointer
VAULT_ENTRY = re.compile(r"(?<![^\W_])(?:keepass\w*|1password|bitwarden|vaultwarden|lastpass|dashlane|cyberark|keychain|"
                         r"passbolt|vault|tresor),?\s+(?:entry|item|record|eintrag|entr\u00e9e|voce|entrada|wpis|vault|collection|folder)\s*[:#]?\s*"
                         r"[\"'\u201c\u2018]?[^\s\"'\u201d\u2019,;]+", re.I)
# An account's name after the word ('Test account \'test01\'', 'user ops01'): a name, not a password near its word
ACCOUNT_NAMED = re.compile(r"(?<![^\W_])(?:[Aa]ccounts?|[Uu]sers?|[Uu]ser\s?names?|[Kk]onto|[Cc]ompte|[Uu]suario|[Cc]uenta|"
                           r"[Uu]tente|[Gg]ebruiker|[Bb]enutzer)\s+(?:[\"'\u2018\u201c][\w.@-]{2,32}[\"'\u2019\u201d]|"
                           r"[a-z][a-z_.-]{1,20}[0-9]{0,3})(?![^\s,;.])|"
                           r"(?<![^\W_])[Gg]roups?\s+[\w.-]{2,64}(?![^\s,;.)])")       # 'AD group 5G-Lab-Admins'
SERIES_MEMBER = re.compile(r"(?P<name>[A-Za-z][A-Za-z-]*?)[-_]?(?P<number>[0-9]{1,4})")
# A word that describes, as the words of several languages end (DESCRIBING_END: 'quarterly', 'zurückgesetzt',
# 'gewijzigd', 'réinitialisé', 'änderbar', 'cambiado'), or a participle after a space alone (PARTICIPLE: 'rotated')
DESCRIBING_END = re.compile(r"[^\W\d_]{3,}(?:ed|ly|bar|lich|ig|iert|ble|ive|\u00e9e?s?|ad[oa]s?|id[oa]s?|at[oa]|"
                            r"it[oa]|en[\u00fd\u00e1]|an[\u00fd\u00e1]|ut[\u00fd\u00e1])|[^\W\d_]{4,}(?:leri|lari)|"
                            r"(?=[^\W\d_]*[\u0105\u0107\u0119\u0142\u0144\u015b\u017a\u017c])[^\W\d_]{3,}(?:on[yae]|an[ye])|"
                            r"(?:zur\u00fcck|ab|an|auf|aus|ein|vor|zu|um|nach|mit|weg|fest|frei)?ge[^\W\d_]{2,}[td]")
PARTICIPLE = re.compile(r"[a-z]{3,}(?:ed|t)")
VERB_S = re.compile(r"[a-z]{3,}s")                   # 'each password ships unset': a verb, after a name in the singular
ACRONYM_WORD = re.compile(r"[a-z]{3,}-[A-Z]{2,5}|[A-Z]{2,5}-[a-z]{3,}")   # 'clé boot-ROM': a name, no password
UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")   # scripts written without spaces
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")   # a value in CJK script is a description
ACRONYM_CAPS = re.compile(r"[A-Z]{2,5}")                         # 'FIPS', 'HSM': an acronym, not a password
LONG_WORD = re.compile(r"[^\W\d_]{15,}")      # 'Erzeugungsprotokoll': a word that long describes
# ... unless, in lower-case ASCII, it ends as no such word does: words run together into a passphrase
# ('correcthorsebatterystaple'), not 'synchronisation', 'interoperability' or 'zwischengespeichert'
RUN_TOGETHER = re.compile(r"[a-z]{15,}(?<!tion)(?<!sion)(?<!ment)(?<!ness)(?<!ity)(?<!ities)(?<!ing)(?<!ings)(?<!able)"
                          r"(?<!ible)(?<!ance)(?<!ence)(?<!ship)(?<!ism)(?<!ist)(?<!ly)(?<!ize)(?<!ise)(?<!ed)(?<!al)"
                          r"(?<!ary)(?<!ory)(?<!ous)(?<!ive)(?<!ic)(?<!s)(?<!lich)(?<!isch)(?<!ig)(?<!bar)(?<!en)(?<!t)(?<!mente)")
# A plural name ('passwords', 'Passwörter', 'keys'; PLURAL_NAME): what follows names a category, not a value
# ... or the last of a list ('per key, certificate and password: origin'; LIST_BEFORE)
LIST_BEFORE = re.compile(r"\s(?:and|und|e|en|och|og|et|y|i|or|oder|ou|o|\u0219i|\u015fi)\s+(?:(?:each|every|jede[snmr]?|chaque|cada|"
                         r"ogni|elke?|varje|ka\u017cde)\s+)?$", re.I)
LIST_REACH = 16
# A name's value is judged on at most this many characters after it: each name in a long answer costs the same;
# and at most NAMES_JUDGED names of a password or code in a text are judged (an answer of 600 names took 0.1 s)
VALUE_REACH = 256
NAMES_JUDGED = 100
PLURAL_NAME = re.compile(r"(?:words|phrases|codes|keys|pins|puks|secrets|strings|w\u00f6rter|worter|woorden|"
                         r"as|senhas|orden)$", re.I)
PREFIXES = frozenset("per non self auto multi pre re co".split())     # 'per-SSID', 'non-default'
# A user's word shortly before a bare 'pass' ('user omc, pass haversack'): a bare 'pass' names a password after a
# space alone then, and otherwise only before ':' or '=' ('Interop test: pass - 20241105' is a verdict)
USER_BEFORE = re.compile(r"(?<![^\W_])(?:users?|usernames?|log(?:in|on)|accounts?)(?![^\W_])", re.I)
PASS_BEFORE = 40
LABEL_COLON = re.compile(r"\s*[:=]")
PASS_IS = re.compile(r"\s+is\s")                # ... or before 'is' where Wi-Fi is named ('guest wifi LabGuest, pass is X')
CODE_NAME = re.compile(r"codes?$")        # a code's value is a number ('Türcode Technikraum 9134': code_number)
LABEL_EQUALS = re.compile(r"\s*=")
KEY_OR_QUOTED = re.compile(r"\s*[:=]|\s+[\"'\u2018\u201c]|\s+(?=[^\s,;]*[0-9])|\s+(?=[a-z]{15,}(?![^\W\d_]))|"
                           r"\s+(?=[a-z]{6,}\s*[.!]?\s*$)")
# ('key: x', "SSID 'NOC-Staff' key 'x'", 'key bluefishsunsetriver': RUN_TOGETHER judges it; 'key tangerine' ending it)
CLOSING_QUOTE = re.compile(r"[\"']?")
# A number's words and roman numerals, a PIN spelled out ('PIN: vier-null-sieben-eins', 'PIN: IV-II-IX-I'); a PIN's
# other words are none ('PIN aktiv'): spelled_number()
NUMBER_WORDS = frozenset("""zero oh one two three four five six seven eight nine niner null eins zwei drei vier f\u00fcnf fuenf sechs
sieben acht neun z\u00e9ro un une deux trois quatre cinq sept huit neuf cero uno dos tres cuatro cinco seis
siete ocho nueve due tre quattro cinque sei sette otto nove um dois tr\u00eas sete oito nul een twee drie
vijf zes zeven negen""".split())
ROMAN = re.compile(r"[IVXLCDM]+")
NUMBER_WORD_PARTS = re.compile(r"[-\s.,]+")
PIN_NUMBER_NAME = re.compile(r"[1-4](?![\s.,-]*[0-9])")
# A recovery or seed phrase's name: its value, lower-case words, is judged as after ':' whatever stands between
PHRASE_NAME = re.compile(r"phrase|fras|zin|seed|semilla|wiederherstellung|mondat|fr(?:\u00e1|a)z[ea]|lause|\u03c6p\u03ac\u03c3|"
                         r"\u0444[p\u0440][a\u0430]\u0437", re.I)
NAME_NOTE = re.compile(r"\s*\([^()\n]{1,40}\)")
PHRASE_VALUE = re.compile(r"\s*(?P<words>(?:[^\W\d_]{2,}\s+){2,6})[0-9]{1,6}[\W_]*$")   # 'zielony pies skacze 1987'
# A word and a year or number given for a Wi-Fi network after ':' or a verb, in any language ('Gäste-WLAN im Container:
# Haselnuss2024', "le code Wi-Fi invité c'est soleil2024"): its key; not a name a network's words start ('vlan120', 'Guest24')
WIFI_KEY = (r"[\"'\u201c\u2018]?(?P<value>(?!(?:vlan|ssid|channel|band|wpa|wep|ieee|ghz|mhz|room|floor|building|hall|site|level|"
            r"port|slot|guest|gast|lab|office|staff|corp|iot)[_-]?[0-9])[^\W\d_]{3,}[_-]?[0-9]{2,4}[!?#*@$%&+]*)"
            r"(?=[\"'\u201d\u2019]?(?:[\s,;.)]|$))")
WIFI_VALUE = re.compile(r"(?<![^\W_])(?:wi-?fi|wlan)(?![^\W_])[^:;,.\n]{0,40}?(?:\s*(?::|\u2192|->|=>|\u21d2)|\s+(?:c['\u2019]est|is|ist|est|es|"
                        r"\u00e8|jest|je|on|to|er|\u00e4r))\s*" + WIFI_KEY, re.I)
# ... or given to connect to a network ('guests connect to LAB-GUEST with hedgehog47')
CONNECT_WITH = re.compile(r"(?<![^\W_])connect(?:s|ed|ing)?\s+to\s+\S+\s+(?:with|using)\s+" + WIFI_KEY, re.I)
# ... or the last of two pairs after a Wi-Fi's name and ':', whatever its label's words ('Wi-Fi for guests: name
# GuestLab, lo lus zais Paj77ntaub'): a word joined to a number, its first part the network's name, but a label that
# names a number (NUMBER_LABELS: 'model Instant515')
WIFI_TAIL = re.compile(r"(?<![^\W_])(?:wi-?fi|wlan)(?![^\W_])[^,;:\n]{0,40},\s*(?P<label>(?:['\u2019]?[^\W\d_][^\s,;:]*\s+){1,5})"
                       r"(?P<value>[^\W\d_]{3,}[0-9]{2,4}[^\W\d_]*)\s*[.!]?\s*$", re.I)   # 'Gast-WLAN, dat Passwoort is Waterkant77'
WIFI_PAIR = re.compile(r"(?<![^\W_])(?:wi-?fi|wlan)(?![^\W_])[^:\n]{0,40}?:\s*[^,;:\n]{1,60},\s*"
                       r"(?P<label>(?:[^\W\d_][^\s,;:]*\s+){1,3})(?P<value>[^\W\d_]{3,}[0-9]{2,4}[^\W\d_]*)\s*[.!]?\s*$", re.I)
# ... or after 'WPA2' and a space ('ssid GUEST wpa2 Harbour2025'), not a mode ('WPA2 Enterprise', 'WPA3 SAE')
WPA_VALUE = re.compile(r"(?<![^\W_])wpa[23]?(?:[-\s]?psk)?\s+[\"'\u201c\u2018]?(?P<value>(?!(?:aes|tkip|ccmp|gcmp|sae|psk|"
                       r"personal|enterprise|eap|mixed|only|mode|transition)[0-9])[^\W\d_]{3,}[0-9]{2,4}[!?#*@$%&+]*)"
                       r"(?=[\"'\u201d\u2019]?(?:[\s,;.)]|$))", re.I)
WIFI_CONTEXT = re.compile(r"wi-?fi|wlan|ssid|wpa|wep|arc4|rc4|dmr|psk|radius|tacacs|router|access\s+point", re.I)
# A symbol in a value: not a letter, digit, '_' or '-', nor a vowel sign of an Indic script (not \w to Python's re)
SYMBOL = re.compile(r"[^\w\-\u0900-\u0963\u0966-\u0dff\u1000-\u1049\u104c-\u109f]")
ACRONYM = re.compile(r"[A-Z][A-Za-z]{1,4}|(?=.*[A-Z])[A-Z0-9]{2,5}|(?=[A-Z]{2})[A-Za-z]{2,6}[0-9]?")
SLOT_WORDS = frozenset("""
a an the this that these those it its one ones each every all any some no none not never only same other another own
is are was were be been being will would shall should must may can could has have had do does did which what who
in on at by for from with without via through per to of into onto under over after before during until within as
and or but nor if when where how than then so also least most laha here there anywhere nowhere everywhere ever yet again
see refer cf ask contact request requested sent send given held kept stored vaulted escrowed managed rotated changed
unchanged reset resets hashed salted encrypted protected required enforced disabled enabled deactivated removed
replaced individual personal random randomised randomized generated provided supplied separate separately elsewhere
unknown expired optional shared unique strong complex temporary default confidential private policy policies length
minimum maximum min max n/a na tbd pending withheld redacted omitted masked logged set issued assigned distributed
delivered handed split printed written known agreed documented listed manager managers hashing hash hashes expiry
expiration change changes rotation complexity login logins logon authentication auth attempts attempt reuse history
vault vaults والٹ file files safe safes protection spraying guessing storage management rules rule requirements
requirement strength aging ageing lockout recovery prompt entry entries field fields check checks audit audits scan
scanning scans event events handover profile codes code keys cards numbers values value characters chars digits
keepass bitwarden lastpass cyberark hashicorp keychain dashlane delinea thycotic 1password ldap radius tacacs sso
saml oidc oauth kerberos keycloak okta entra azure active directory freeipa mfa totp fido yubikey hsm tpm smartcard
smartcards pgp gpg sms phone telephone e-mail email mail letter courier envelope service desk helpdesk team portal
office offline online local remote hardware software cold hot issues problems questions matters off log-in log-ins
kapali a\u00e7ik devre keins brak aus demander demandez uitgeschakeld ingeschakeld vygenerov\u00e1no wygenerowane
servicedesk interface interfaces ile ve p\u016fvod datum n\u00e1stroj use uses usage origin origins origine origen
herkunft provenance proof nachweis exists exist shown chosen d\u00e9tenu d\u00e9tenue almeno note noti saisi saisie oprindelse opprinnelse ursprung alkuper\u00e4 pochodzenie herkomst
origem
siehe laut gem\u00e4\u00df nach im der die das den dem des ein eine einer nicht kein keine nur wird werden wurde ist sind bei
beim vom zum zur mit ohne \u00fcber unter f\u00fcr pro je alle jeder jede ge\u00e4ndert gesetzt gespeichert hinterlegt
verschl\u00fcsselt deaktiviert aktiviert tresor passwort-tresor zuf\u00e4llig individuell pers\u00f6nlich bekannt unbekannt
voir selon dans le la les un une du de pas non aucun aucune est sont chang\u00e9 chang\u00e9s stock\u00e9 stock\u00e9s chiffr\u00e9
d\u00e9sactiv\u00e9 activ\u00e9 coffre ver seg\u00fan en el los las una del ning\u00fan ninguna es son cambiado cambiada
guardado guardada cifrado desactivado activado b\u00f3veda conforme na em o os as um uma do da n\u00e3o nenhum nenhuma
\u00e9 s\u00e3o alterado alterada cofre desativado vedi secondo nel nella il lo gli di della nessun nessuna sono cambiato
cambiata custodito disattivato checking p\u00fablica p\u00fablico publique publica pubblica pubblico nonaktif
dinonaktifkan errati errato errate sbagliati sbagliato wrong incorrect falsch falsche fout foute hatal\u0131 yanl\u0131\u015f
avst\u00e4ngd avst\u00e4ngt tedarik\u00e7ide vendor-set user-set factory-set user-chosen vendor-chosen \u05e9\u05d2\u05d5\u05d9\u05d9\u05dd \u05e9\u05d2\u05d5\u05d9
\u0627\u0644\u062e\u0627\u0637\u0626\u0629 o\u0442\u043a\u043b\u044e\u0447e\u043da o\u0442\u043a\u043b\u044e\u0447\u0451\u043d o\u0442\u043a\u043b\u044e\u0447e\u043d o\u0442\u043a\u043b\u044e\u0447e\u043do \u0432\u044b\u043a\u043b\u044e\u0447e\u043d \u0432\u044b\u043a\u043b\u044e\u0447e\u043da \u0432\u0438\u043c\u043a\u043de\u043do \u0432\u0438\u043c\u043a\u043de\u043d\u0438\u0439 \u092c\u0926\u0932\u093e\u0935 \u092a\u0930\u093f\u0935\u0930\u0924\u0928 \u0928\u093f\u0937\u0915\u0930\u093f\u092f letiltva \u0645\u0639\u0637\u0644 \u05de\u05d5\u05e9\u05d1\u05ea
\u05de\u05e0\u05d5\u05d8\u05e8\u05dc \u05de\u05e0\u05d5\u05d8\u05e8\u05dc\u05ea beveiligd implicit\u0103 implicit access remains remain remained achtergebleven tilbage igjen
neobsahuje neuv\u00e1d\u00edme neuvadime nen\u00ed neni device-specific site-specific vendor-specific unit-specific user-specific fourni fournie fournis fournies age restic borg borgbackup veracrypt luks bitlocker sops duplicity
m-of-n k-of-n n-of-m d\u00e9fini d\u00e9finie d\u00e9finis d\u00e9finies choisi choisie saisi saisie \u00e9tabli \u00e9tablie
rempli remplie garanti garantie n\u00e9lk\u00fcl nelkul i\u00e7ermez i\u00e7ermiyor yok yoktur bulunmuyor
remis remise remises transmis transmise transmises communiqu\u00e9 communiqu\u00e9e donn\u00e9 donn\u00e9e
abgelaufen verlopen wygas\u0142o wygaslo caducada caducado expirada expirado redefinida redefinido restablecida restablecido bloqueado bloqueada wifi wi-fi wlan keepassxc keepassx keepassdx vaultwarden passbolt psono enpass roboform nordpass minimo minima m\u00ednimo m\u00ednima massimo m\u00e1ximo angalau herufi ausgegeben ausgeh\u00e4ndigt \u00fcbergeben zur\u00fcckgegeben fehlt chez hindi bababa kalmad\u0131 kalmadi eftir kasas\u0131nda kasasinda kasas\u0131 kasasi denenecek de\u011fi\u015ftirilecek degistirilecek pedir perguntar solicitar preguntar chiedere fragen vragen minimal karakter expire expires expiring forbidden prohibited banned disallowed allowed permitted mandatory unused 2abl ba3d ba3den 3ala 3al ma3 2aw 7atta hal2a unset read-only read-write readonly readwrite write-only sekurang-kurangnya setidaknya sedikitnya paling maksimum \u062d\u062f\u0627\u0642\u0644 \u062d\u062f\u0627\u06a9\u062b\u0631 \u062f\u0633\u062a\u06a9\u0645 anywhere nowhere everywhere used corporativo corporativa davette ekte takvimde y\u00f6neticide \u0438c\u0442\u0451\u043a \u0438c\u0442e\u043a c\u043ce\u043d\u0438\u043b y\u0437\u043da\u0442\u044c c\u043fpoc\u0438\u0442\u044c y\u0442o\u0447\u043d\u0438\u0442\u044c
\u09ad\u09b2\u099f\u09c7 \u09ad\u09b2\u099f \u09ad\u09b2\u099f\u09c7\u09b0 \u0d35\u0d4b\u0d7e\u0d1f\u0d1f\u0d3f\u0d7d \u0d35\u0d4b\u0d7e\u0d1f\u0d1f nasa yaon
""".split())
# A user name and its password apart by '/' (USER_PAIR: 'ops / Wendelstein', 'admin/Open5gs2024'; H21-2, H22-4) or
# ':' (USER_COLON: 'admin:Kittiwake!'), where the answer names a login or an account (PAIR_CONTEXT) or the user is a
# common account, perhaps numbered or suffixed (ACCOUNT_NAMES: 'ops2', 'noc-ro'; for ':' always): refused unless
# the second names a role or describes (ROLE_WORDS, SLOT_WORDS), is an acronym ('SSO', 'IPv4'), a scheme's or
# standard's name, a name that words follow ('root / Debian12 hosts'), a participle follows ('admin/1423 changed'),
# or the second is the first's twin ('oper01 / oper02'); a plain lower-case word only after a common account
DOTTED_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)+")            # '10.1109/ACCESS…': a DOI's prefix
IMAGE_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*:v?[0-9][\w.-]*")     # 'sim:1.4', 'webui:v3.4.1': an image and its tag
FILE_NAME = re.compile(r"[\w-]+\.(?:ya?ml|json|conf|cfg|cnf|ini|toml|xml|txt|md|csv|log|py|sh|js|html?|j2|tpl|in|env|pem|"
                       r"crt|cer|pub|zip|gz)", re.I)        # 'config/udmcfg.yaml': a path, not a user and password
USER_PAIR = re.compile(r"(?<![\w/.@-])(?P<user>[\w.@+-]{2,40})\s*/\s*(?P<password>[^\s/,;()]{1,60})(?![^\s,;()])")
USER_COLON = re.compile(r"(?<![\w/.@:-])(?P<user>[A-Za-z][\w.-]{1,30}):(?P<password>[^\s:/@]{4,60})(?![^\s,;()])")
ACCOUNT_BASE = re.compile(r"[a-z]+")
# What names a path, not a user, before 'ops/5g-lab' ('see vault ops/5g-lab', 'collection ops/5G')
PATH_BEFORE = re.compile(r"(?<![^\W_])(?:vault|folder|path|collection|directory|dir|repo|repository|share|bucket|wiki|"
                         r"page|namespace|project|group|tresor|coffre|ordner|pfad|file|datei|fichier)(?:,?\s+(?:entry|item|record|eintrag))?\s*[:#]?\s*"
                         r"[\"'\u201c\u2018]?$", re.I)
PATH_REACH = 24
SSID_LIKE = re.compile(r"[A-Z0-9-]")          # a network's name before its key ('Wi-Fi: Labnet-Guest / kumquat')
PAIR_CONTEXT = re.compile(r"(?<![^\W_])(?=[^\W\d_])(?:credentials?|creds|log(?:in|on)s?|accounts?|users?|auth\w*|wi-?fi|wlan|ssid|"
                          r"bmc|idrac|ipmi|ilo|webui|web\s?ui|webconsole|console|ont|ssh|sftp|ftp|netconf|default|"
                          r"shared|portal|access|vpn|gui|panel|zugang\w*|konto|benutzer|identifiants?|compte|usuario|"
                          r"cuenta|inlog|inloggegevens|p(?:\u0159|r)ihl(?:\u00e1|a)(?:\u0161|s)en\w*|p(?:\u0159|r)(?:\u00ed|i)stup\w*|break-?glass)(?![^\W_])", re.I)
ACCOUNT_NAMES = frozenset("admin administrator root ops noc user operator support service guest telecomadmin ubnt pi "
                          "cisco manager maint super superuser sysadmin useradmin adminuser tester test lab demo sa "
                          "oracle postgres beheer".split())
ROLE_WORDS = frozenset("admin administrator administrators root operator operators viewer viewers guest guests user "
                       "users readonly read-only ro rw read write maint maintenance support service ops engineer "
                       "engineers auditor auditors security superuser sudo none disabled removed locked password "
                       "passwords pass key keys certificate certificates cert certs token tokens sso ldap mfa totp pin "
                       "puk login logins account accounts role roles group groups owner owners full limited all partial "
                       "basic read-write readwrite".split())
VENDOR_NAMES = frozenset("cisco juniper nokia ericsson huawei zte samsung arista mikrotik fortinet fortigate paloalto "
                         "checkpoint hpe aruba dell lenovo supermicro intel amd nvidia mavenir rakuten airspan ciena "
                         "ribbon ubiquiti netgear tplink zyxel extreme brocade siemens hirschmann moxa keysight viavi "
                         "spirent rohde anritsu".split())     # 'Routers: Cisco / Juniper': two makers, no login
FOLLOWING_WORD = re.compile(r"\s+(?P<word>[^\W\d_][\w-]*)")
# A vendor's published default is still a password (H26-5): a pair of twins ('admin / admin', 'guest:guest',
# '888888 / 888888'), a value only defaults use (DEFAULT_VALUES: 'elastic / changeme'), or 'password', 'pass' or
# 'default' after a common account ('admin / password'; not 'user / password', a login's two fields)
DEFAULT_VALUES = frozenset("changeme change_on_install crftpw s3cret passw0rd letmein toor calvin raspberry tiger admintelecom "
                           "nemuuser in4mix changeit".split())
USER_SUFFIX = re.compile(r"[@#!_.-]?[0-9]{2,6}[!]?")     # what a default adds to its user's name ('@888', '123')
ACCOUNT_DEFAULTS = frozenset("password pass default".split())
GONE_WORDS = frozenset("changed replaced removed disabled deleted rotated reset revoked blocked locked retired "
                       "overwritten gone".split())                  # 'admin/admin replaced', not '… enabled'
ATTEMPT = re.compile(r"(?<![\w-])(?:try|tries|tried|attempt\w*)(?![\w-])", re.I)    # 'try admin/admin: must fail'
# ... and a common account 'with' its default ('root with calvin', 'admin with 1111'; DEFAULT_WITH)
DEFAULT_WITH = re.compile(r"(?<![\w.@-])(?P<user>[A-Za-z][\w.-]{1,30})\s+with\s+(?P<password>[^\s,;()]{4,60})(?![^\s,;()])")
# ... stated as still set (STATED_DEFAULTS, but words with other uses; DEFAULT_LEFT: 'left as admin', 'staat nog op calvin')
# or after its account with a space alone (DEFAULT_PAIR): stated_default()
STATED_DEFAULTS = DEFAULT_VALUES - {"tiger", "raspberry"}
DEFAULT_LEFT = re.compile(r"(?<![^\W_])(?:still|left\s+(?:at|as|on)|remains?|staat\s+nog\s+op|noch\s+(?:auf|immer)|"
                          r"toujours(?:\s+actif)?\s*:?|sigue\s+(?:siendo|en)|ainda)\s+[\"'\u201c\u2018]?(?P<value>[\w.@!#$-]{4,40})",
                          re.I)
DEFAULT_PAIR = re.compile(r"(?<![\w.@-])(?P<user>[A-Za-z][\w.-]{1,30})\s+(?P<password>[^\s,;()]{4,60})(?![^\s,;()])")
# A wallet's seed words after its name and ':' (seed_words)
SEED_LIST = re.compile(r"(?<![^\W_])(?P<name>seed|semilla|bip-?39|mnemonic|mnemonica|mn\u00e9monique|"
                       r"\u0444[p\u0440][a\u0430]\u0437\w*\s+"
                       r"[b\u0432][o\u043e][c\u0441][c\u0441][t\u0442][a\u0430][h\u043d][o\u043e][b\u0432]\u043b[e\u0435][h\u043d]\w*|[c\u0441]\u0438\u0434-?\u0444[p\u0440][a\u0430]\u0437\w*|"
                       r"[m\u043c][h\u043d][e\u0435][m\u043c][o\u043e][h\u043d]\u0438\u0447\w*|[k\u043a]\u043b\u044e\u0447[e\u0435][b\u0432]\w*\s+\u0444[p\u0440][a\u0430]\u0437\w*|"
                       r"(?:recovery|seed|backup|mnemonic)\s+words?|(?:twelve|eighteen|twenty-four|12|18|24)\s+words|wallet\s+(?:backup\s+)?words|"
                       r"palabras\s+de\s+recuperaci(?:\u00f3|o)n|parole\s+di\s+recupero|"
                       r"palavras\s+de\s+recupera(?:\u00e7|c)(?:\u00e3|a)o|wiederherstellungsw(?:\u00f6|o)rter|"
                       r"mots\s+de\s+r(?:\u00e9|e)cup(?:\u00e9|e)ration|\u52a9\u8bb0[\u8bcd\u7b26]|"
                       r"(?:\u30ea\u30ab\u30d0\u30ea\u30fc|\u30b7\u30fc\u30c9)\u30d5\u30ec\u30fc\u30ba)(?![^\W_])[^:\n]{0,40}:"
                       r"\s*(?P<value>[^\W\d_]{2,}(?:\s+[^\W\d_]{2,}){5,})", re.I)
TWIN = re.compile(r"[^\W\d_][\w.-]{2,}|\d{6,}")
# A password given on a command line (COMMAND_PASSWORDS; H22-4, H23-1): 'ipmitool -U ADMIN -P X', "echo 'X' | sudo
# -S" (or '| passwd --stdin', '| chpasswd'), 'htpasswd -b FILE USER X', 'keytool -storepass X', 'smbclient -U user%X',
# 'ntp authentication-key 1 md5 X' (OSPF's 'message-digest-key', a key chain's 'key-string', IKE's 'pre-shared-key
# ascii-text', Kamailio's 'modparam(…, "password", "X")'), 'curl -u user:X', 'lftp -u user,X', 'snmpwalk -c X' (and -A, -X), Cisco's
# 'secret 0 X', 'rootpw X', 'logs in as USER with X', a Wi-Fi QR code's 'P:X;', 'jdbc:…user/X@', 'net user USER X
# /add', openssl's '-k X' and 'pass:X', '7z -pX', 'zip -P X', 'ssh-keygen -N X', IKE's and a RADIUS server's key
# (H25-3), and '-pX', '-p X' or '-a X' after a database's, Redis's, Docker's or sshpass's command ('mysql -u root
# -pOregano', 'redis-cli -a X'), but for a port ('docker run -p 8080:80')
COMMAND_PASSWORDS = (re.compile(r"(?<!\S)-U\s+\S+\s+-P\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])echo\s+[\"']?(?P<value>[^\s\"']+)[\"']?\s*\|\s*(?:sudo\s+-S|passwd\s+"
                                r"--stdin|chpasswd)"),
                     re.compile(r"(?<![^\W_])htpasswd(?:\s+-[A-Za-z]+)*\s+-[A-Za-z]*b[A-Za-z]*(?:\s+-[A-Za-z]+)*\s+\S+"
                                r"\s+\S+\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])-?(?:src|dest)?(?:store|key)pass(?:\s*=\s*|\s+)(?P<value>\S+)"),
                     re.compile(r"(?<!\S)--pin-adm\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])AUTH\s+(?P<value>(?=\S*[0-9])\S+)"),
                     re.compile(r"(?<![^\W_])pySim[\w.-]*\s[^|;\n]*?(?<!\S)-a\s+(?P<value>\S+)"),
                     re.compile(r"(?<![\w.*-])[\w.*-]+:(?:[0-9]{1,5}|\*):[\w.*-]+:[\w.*-]+:(?P<value>[^\s:]+)"),
                     re.compile(r"(?<!\S)-U\s+[^\s%]+%(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])check_snmp\w*(?![^\W_])[^|;\n]*?(?<!\S)-C\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])CommunityData\(\s*[\"'](?P<value>[^\"']+)[\"']"),
                     re.compile(r"ValidCommunities\S*\s+/v\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])snmp-?community\s*=\s*(?P<value>[^\s,;]+)", re.I),
                     re.compile(r"(?:authentication|message-digest)-key\s+[0-9]+\s+md5\s+(?:[0-9]\s+)?(?P<value>\S+)",
                                re.I),
                     re.compile(r"(?<![^\W_])key-string\s+(?:[0-9]\s+)?(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])authentication-key\s+(?![0-9]+\s+md5)(?![a-z]+(?:[\s:,;.]|$))[\"']?(?P<value>[^\s\"']+)", re.I),
                     re.compile(r"(?<![^\W_])snmp-server\s+community\s+(?!strings?(?![^\W_]))(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])(?:ro|rw|trap2?)community6?\s+(?P<value>\S+)", re.I),   # net-snmp's snmpd.conf
                     re.compile(r"(?<![^\W_])com2sec6?\s+\S+\s+\S+\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])snmp-agent\s+community\s+(?:read|write)\s+(?:cipher\s+)?(?P<value>\S+)", re.I),
                     re.compile(r"\{\$\w*(?:COMMUNITY|PASSWORD|SECRET|PSK)\w*\}\s*(?:is\s+set\s+to|=|:)\s*(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])radclient\s+(?:\S+\s+){1,4}?(?:auth|acct|status|coa|disconnect)\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])(?:mifare|desfire|sector\s+[0-9]{1,2})[^\n]{0,40}?(?<![^\W_])(?:keyed|key\s*[ab]?)\s*[:=]?\s*"
                                r"(?P<value>[0-9a-f]{12})(?![0-9a-f])", re.I),
                     re.compile(r"(?<![^\W_])auth(?:entication)?\s+text\s+(?!(?:disabled|enabled|none|off|removed|unset|only)(?![^\W_]))(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])snmp\w*(?![^\W_])[^|;\n]*?(?<![^\W_])(?:auth|priv)\s+(?:(?:md5|sha\w*|3?des|aes\w*)\s+)?"
                                r"(?!(?:priv|auth|only|and|with|none)(?![^\W_]))(?P<value>\S+)", re.I),   # 'auth sha X priv aes Y': X
                     re.compile(r"(?<![^\W_])pre-shared-key\s+(?:ascii-text|hexadecimal)\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])modparam\([^)]*?[\"'](?:password|passwd|secret)[\"']\s*,\s*[\"']"
                                r"(?P<value>[^\"']+)[\"']", re.I),
                     re.compile(r"(?<!\S)(?:-u|--user)\s+[^\s:]+:(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])lftp(?![^\W_])[^|;\n]*?(?<!\S)-u\s+[^\s,]+,(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])snmp\w*(?![^\W_])[^|;\n]*?(?<!\S)-[cAX]\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])(?:secret|password)\s+[057]\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])rootpw(?:\s+--\S+)*\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])logs?\s+in\s+as\s+\S+\s+(?:with|using)\s+(?P<value>\S+)", re.I),
                     re.compile(r"WIFI:(?:[^;\s]*;)*?P:(?P<value>[^;\s]+)"),
                     re.compile(r"(?<![^\W_])u:\s*\S+\s+p:\s*(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])ldap\w*(?![^\W_])[^|;\n]*?(?<!\S)-w\s+(?P<value>\S+)"),
                     re.compile(r"plain-text-password(?:-value)?\s+(?P<value>\S+)"),
                     re.compile(r"wpa-psk\s+(?:ascii|hex)\s+[0-9]\s+(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])app(?:lication)?[\s-]+passwords?\s+(?P<value>[a-z]{4}(?:\s[a-z]{4}){3})(?![^\W_])",
                                re.I),
                     re.compile(r"(?<![^\W_])(?:jdbc:\S*?|sqlplus\s+)[\w.-]+/(?P<value>[^\s/@]+)@"),
                     re.compile(r"(?<![^\W_])net\s+user\s+\S+\s+(?P<value>\S+)\s+/add", re.I),
                     re.compile(r"(?<![^\W_])user(?:add|mod)(?![^\W_])[^|;\n]*?(?<!\S)-p\s+(?P<value>\S+)"),
                     re.compile(r"(?<!\S)-pass(?:in|out)?\s+pass:(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])openssl(?![^\W_])[^|;\n]*?(?<!\S)-k\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])7za?\s[^|;\n]*?(?<!\S)-p(?P<value>[^\s-]\S*)"),
                     re.compile(r"(?<![^\W_])(?:un)?zip\s[^|;\n]*?(?<!\S)-P\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])rabbitmqctl\s+(?:add_user|change_password)\s+\S+\s+(?P<value>\S+)"),
                     re.compile(r"(?<![^\W_])ssh-keygen\s[^|;\n]*?(?<!\S)-N\s+[\"']?(?P<value>[^\s\"']+)"),
                     re.compile(r"(?<![^\W_])(?:isakmp\s+key|radius-server\s[^|;\n]*?\skey)\s+(?:[0-9]\s+)?"
                                r"(?P<value>\S+)", re.I),
                     re.compile(r"(?<![^\W_])(?:redis-cli|mysql|mysqldump|mysqladmin|mariadb|mongo|mongosh|docker|"
                                r"podman|sshpass|psql|influx)(?![^\W_])[^|;\n]*?(?<!\S)-[pa]\s*[\"']?(?P<value>[^\s\"'-]"
                                r"[^\s\"']*)"))
PORT = re.compile(r"[0-9][0-9:./-]*")
COMMAND_LABEL = re.compile(r"text|key|secret|pass|psk|auth|priv|community", re.I)     # a label a refusal may quote
# A word given as the password (REVERSE_USED: 'we use Blackthorn as the shared password', "use 'Petrel' as pwd on
# the jump host"; REVERSE_NAMED, where the password's name ends the clause: 'Otterburn is the password'), unless it
# describes or points (SLOT_WORDS) or a negation stands between ('this is not the password')
REVERSE_NAMES = r"(?P<name>pass(?:words?|phrases?|codes?)?|pwd|pw|passw[o\u00f6]rt|kennwort|pin|code)"
REVERSE_USED = re.compile(
    r"(?<![^\W_])(?:use|uses|used|using|set|chose|chosen|nutzen|verwenden)\s+[\"'\u201c\u2018]?"
    r"(?P<word>[^\s\"'\u201d\u2019]{1,60})[\"'\u201d\u2019]?\s+(?:as|als)\s+"
    r"(?:(?:the|our|a|an|das|der|die|unser|unsere)\s+)?(?:[\w-]+\s+){0,3}?" + REVERSE_NAMES + r"(?![^\W_])", re.I)
REVERSE_NAMED = re.compile(
    r"(?<!\S)[\"'\u201c\u2018]?(?P<word>[^\s\"'\u201d\u2019]{1,60})[\"'\u201d\u2019]?\s+(?:is|was|ist)"
    r"(?:\s+(?:still|now|also|jetzt|noch))?\s+(?:(?:the|our|a|an|das|der|die|unser|unsere)\s+)?(?:[\w-]+\s+){0,3}?"
    + REVERSE_NAMES + r"(?=\s*(?:[.,;!)]|$))", re.I)
# A number of three to ten digits, in groups ('7731-0458-2290') or four to eight single digits ('5 9 1 3'), in the
# clause after a door's, gate's, lock's, padlock's, safe's or key box's name or 'Code' (CODE_WORD, in several
# languages: 'Tür Serverraum: Code 4719', 'code de la porte : 4488'; H21-4, H22-3; 'code' in lower case alone is
# not one: 'error code 404'), unless it is a year, a unit follows (CODE_UNIT) or a label stands before it
# (CODE_LABEL: 'room 214'); one that ends in '#' or '*', as typed on a keypad, always
CODE_WORD = re.compile(r"(?<![^\W_])(?=[^\W\d_])(?:doors?|d[o0][o0]rs?|doorlocks?|c\u1eeda|b(?:\u00e1|a)o\s+(?:\u0111|d)(?:\u1ed9|o)ng|gate|slagbo(?:o|m)\w*|palang|mantraps?|man-traps?|pinto|lawang|bab|[\u0648\u0628\u0641]?(?:\u0627\u0644)?\u0628\u0627\u0628|(?:server|comms|equipment)\s+room\s+codes?|cage\s+codes?|cabinet\s+codes?|vudar\w*|\u0434[b\u0432][e\u0435][p\u0440]\w*|padlock|keypad|dtmf|key\s?box|lockbox|key\s?safe|"
                       r"key\s?cabinet|(?<!azure\s)key\s?vault|schl(?:\u00fc|ue)sselbox\w*|n(?:\u00f8|o)(?:gle|kkel)boks\w*|"
                       r"avain(?:kaap|boks)\w*|k(?:\u00e9|e)t\s+s(?:\u1eaf|a)t|brankas|\u0924\u093f\u091c\u094b\u0930\u0940|"
                       r"\u062a\u062c\u0648\u0631\u064a|\u0924\u093e\u0932[\u093e\u0947]|domofon\w*|citofon\w*|"
                       r"(?:centrale?|centralina|zentrale)\s+(?:d['\u2019]\s*|de\s+(?:l['\u2019]\s*)?|der\s+)?(?:alarm\w*|allarm\w*)|"
                       r"alarm\s+panel|schl(?:\u00fc|ue)sselschrank|zugang\w*|zutritts\w*|lock|disarm|"
                       r"schl(?:\u00fc|ue)sselkasten|schl(?:\u00fc|ue)sseltresor|t\u00fcr(?:en|codes?|schloss|\u00f6ffner)?|tresor|safe(?![\s-]+(?:deposit|harbou?r|mode|zone|area|distance))|"
                       r"combination|locker|lockers|nyckelsk(?:\u00e5|a)p\w*|kodl(?:\u00e5|a)s\w*|zahlenschlo(?:ss|\u00df)\w*|\u0437[a\u0430]\u043c[o\u043e][k\u043a]\w*|"
                       r"passcodes?|one-time\s+codes?|einmalcodes?|otp|porte|portail|puerta|porta|cancello|deur|"
                       r"portone|ingresso|toegangscode|deurcode|deurkode|[^\W\d_]+k(?:\u00f3|o)(?:\u00f0|d)i|ovikoodi|digicode|d(?:\u00f8|o)rkode|portkod|koden|"
                       r"cage|cerradura|cadeado|szaf\w*|dve\u0159\w*|tresor\w*|pin[\s-]?codes?|schlie(?:\u00df|ss)fach\w*|"
                       r"barrier|schranke|cassetta\s+delle\s+chiavi|Cassetta\s+delle\s+chiavi|cassetta\s+chiavi|Cassetta\s+chiavi|kotak\s+kunci|Kotak\s+kunci|peti\s+kunci|Peti\s+kunci|kombinasi|cutia\s+cu\s+chei|Cutia\s+cu\s+chei|combina(?:\u021b|\u0163|t)i\w*|kengele|mlango|unlocks|\u09a6\u09b0\u099c\u09be(?:\u09b0)?|\u0985\u09af\u09be\u09b2\u09be\u09b0\u09ae|\u05d4?\u05db\u05e1\u05e4\u05ea|\u091a\u093e\u092c\u0940\s+\u092c\u0949\u0915\u0938|\u0915\u0949\u092e\u092c\u093f\u0928\u0936\u0928|kombinasjon\w*|kombination\w*|caja\s+de\s+llaves|caja\s+fuerte|cassaforte|combinazione|combinaci(?:\u00f3|o)n?|caixa\s+forta|"
                       r"combina(?:\u00e7|c)(?:\u00e3|a)o|hek|bram[aeyi]|br(?:\u00e1|a)n[ayu\u011b]|"
                       r"\u0434[\u043eo]\u043c[\u043eo]\u0444[\u043eo]\u043d\w*|intercom|interphone|alarmanlage|"
                       r"(?:intruder|burglar)\s+alarm|alarm\s+system|lift|elevator|ascensor|aufzug|sejf\w*|szyfr|"
                       r"(?:alarm|larm|h(?:\u00e4|a)lytys|d(?:\u00f8|\u00f6|o)rr?|port|grind|l(?:\u00e5|a)s|sperr|entsperr|adgangs|"
                       r"tilgangs|tresor|safe|ajt(?:\u00f3|o)|riaszt(?:\u00f3|o))-?(?:k(?:\u00f3|o)dot|k(?:\u00f3|o)ddal|kod|kode|koden|koodi|kodu|k(?:\u00f3|o)dja|k\u00f3d|codes?)|"
                       r"[c\u0441][e\u0435]\u0439\u0444\w*|[k\u043a][o\u043e]\u043c\u0431\u0438\u043d[a\u0430]\u0446\u0438\w*|"
                       r"d(?:\u00f6|o)rr|drzwi|cadenas|candado|lucchetto|kluis|coffre|cofre|trezor\w*|seif(?:ul|ului|uri|o|a|as|e)?|kasa|"
                       r"kasas(?:\u0131|i)|kassask(?:\u00e5|a)p\w*|[^\W\d_]*schlo(?:ss|\u00df)|cijferslot|hangslot|"
                       r"fietsslot|codeslot|combo|fechadura|kasan(?:\u0131|i)n|sef(?:a|u|om)?|kassakaap\w*|yhdistelm\w*|sz(?:\u00e9|e)f\w*|kombin(?:\u00e1|a)ci(?:\u00f3|o)\w*|code\s+(?:d['\u2019]\s*|de\s+l['\u2019]\s*)?alarme|\u043f\u0438[h\u043d]-?[k\u043a][o\u043e]\u0434\w*|sleutelkluis\w*|clavier|h(?:\u00e6|ae)ngel(?:\u00e5|a)s\w*|hengel(?:\u00e5|a)s\w*|asma\s+kilid\w*|kilid\w*|gembok|(?:\u1ed5|o)\s+kh(?:\u00f3|o)a|\u03bb[o\u03bf][y\u03c5][k\u03ba](?:\u03ad|\u03b5)[t\u03c4][o\u03bf]\w*|lakat\w*|lac(?:\u0103|a)t\w*|cadenat|kufuli|mangga\s+kunci|code\s+porteur|code\s+(?:participant|animateur|organisateur|invit(?:\u00e9|e))|code\s+de\s+(?:la\s+)?conf(?:\u00e9|e)rence|eng\u00e5ngskod\w*|kap(?:\u0131|i)|bo(?:\u00ee|i)t(?:e|ier)\s+(?:\u00e0|a)\s+cl(?:\u00e9|e)s?|sleutelkast\w*|"
                       r"\u03c3[y\u03c5][n\u03bd]\u03b4[y\u03c5][a\u03b1]\u03c3[m\u03bc]\w*|[x\u03c7][p\u03c1][h\u03b7][m\u03bc][a\u03b1][t\u03c4][o\u03bf][k\u03ba][i\u03b9][b\u03b2]\w*|[^\W\d_]+t(?:\u00fc|ue)r(?:en)?|"
                       r"(?:d(?:\u00e9|e)sactiver|disinserire|disattivare|desactivar|desarmar|arm|set|unset)\s+"
                       r"(?:(?:l['\u2019]|the|el|la|il|lo)\s*)?(?:alarm\w*|allarm\w*)|tastenfeld\w*|pin-?kod(?:en|e)?|unlock|desbloqueo|sblocco|d(?:\u00e9|e)verrouillage|"
                       r"ontgrendel\w*|h(?:\u00e4|a)ngl(?:\u00e5|a)s\w*|k(?:\u0142|l)(?:\u00f3|o)dk\w*|kilit\w*|z(?:\u00e1|a)m(?:e|)k\w*|"
                       r"(?:key|punch)\s+in|code\s+(?:du|de)\s+badge|code|"
                       r"(?:door|gate|entry|access|release|unlock|lock|alarm|escort|visitor|besucher|visiteur|visitante|bezoeker|activation|enrol?ment|voucher|verification|"
                       r"override|badge|disarm|arm|duress|panic|night|unset|set|reset|bypass|participant|conference|meeting|moderator|host|"
                       r"key|cabinet|signing|sms|confirmation|security|login|installer|engineer|master|errichter|benutzer|"
                       r"installateur|installatore|instalador|techniker|technician)"
                       r"[\s-]?codes?)(?![^\W_])|\u89e3\u9664\u30b3\u30fc\u30c9|\u64a4\u9632\u7801|\u95e8\u7981\u7801|\u9580\u9396|\u95e8\u9501|(?<![\u90e8\u4e13])\u95e8(?:\u4e2a)?(?:\u53f7\u5934|\u53f7\u7801)|(?<![\uac00-\ud7a3])\ubb38\s*\ubc88\ud638|\ud574\uc81c\s*(?:\ucf54\ub4dc|\ubc88\ud638)|\u91d1\u5eab|\u6697\u8a3c\u756a\u53f7|\u89e3\u9320\u756a\u53f7|"
                       r"\u4fdd\u9669\u7bb1|\u9375\u7bb1|\u30ad\u30fc\u30dc\u30c3\u30af\u30b9|\ud0a4\ubc15\uc2a4|\uae08\uace0|\ub3c4\uc5b4\ub77d|\u5357\u4eac\u9320|\u6302\u9501|\u89e3\u9501\u7801?|"
                       r"\u89e3\u9664\u756a\u53f7|\u30c9\u30a2|\u0e1b\u0e23\u0e30\u0e15|\u0e15\u0e40\u0e0b\u0e1f|\u0e41\u0e21\u0e01\u0e0d\u0e41\u0e08|\u0642\u0641\u0644|\u05d4?\u05de\u05e0\u05e2\u05d5\u05dc|\uc790\ubb3c\uc1e0|\uc5f4\uc1e0\ud568|\u0635\u0646\u062f\u0648\u0642 \u0627\u0644\u0645\u0641\u0627\u062a\u064a\u062d|sanduku la funguo|vrata|Vrata|puertahan|Puertahan|il\u1eb9k\u00f9n|Il\u1eb9k\u00f9n|faitotoa|Faitotoa|matap\u0101|Matap\u0101|pultahan|Pultahan|lemati|Lemati|lebati|Lebati|chitseko|Chitseko|gonhi|Gonhi|yegonhi|Yegonhi|punkunpa|Punkunpa|punku|Punku|ok\u1ebd|Ok\u1ebd|doras|Doras|\u078b\u0783\u078e|geti|Geti|heke|Heke|kgoro|Kgoro|kuaha|Kuaha|geata|Geata|\u0cac\u0cbe\u0c97\u0cb2\u0ca8|\u0cac\u0cbe\u0c97\u0cb2\u0cc1|\u0c85\u0cb2\u0cbe\u0cb0\u0cae|\u0d35\u0d3e\u0d24\u0d3f\u0d7d|\u0d05\u0d32\u0d3e\u0d31\u0d02|\u1010\u1001\u102b\u1038|\u0e9b\u0eb0\u0e95|\u0eaa\u0e99\u0e8d\u0eb2\u0e99\u0ec0\u0e95\u0ead\u0e99|\u044d\u0448\u0438r\u0438\u043d\u0438\u043d|\u042d\u0448\u0438r\u0438\u043d\u0438\u043d|\u044d\u0448\u0438\u043a|\u042d\u0448\u0438\u043a|c\u0438r\u043da\u043b\u0438\u0437a\u0446\u0438\u044f|C\u0438r\u043da\u043b\u0438\u0437a\u0446\u0438\u044f|\u062f\u0631\u0648\u0627\u0632\u06d0|\u062f\u0631\u0648\u0627\u0632\u0647|\u0627\u0644\u0627\u0631\u0645|albaabka|Albaabka|qaylo-dhaanta|Qaylo-dhaanta|yomnyango|Yomnyango|(?<![^\W_])(?:u\u0219a|U\u0219a|u\u015fa|U\u015fa|qhov\s+rooj|o\u043cca\w*|O\u043cca\w*|\u0431\u0436\u044d\w*|\u0411\u0436\u044d\w*|\u044d\u0436\u0438\w*|\u042d\u0436\u0438\w*|matua\w*|Matua\w*|esik\w*|Esik\w*|k\u014dj\u0101m|dhoot|Dhoot|meyo|Meyo|tlatzacuilli|uchi'|ghenna|Ghenna|puarte|Puarte|odamatan|Odamatan|petta|Petta|\u02bb\u014dpani|m\u0169rango|M\u0169rango|a\u043b\u04d1\u043a|A\u043b\u04d1\u043a|dorrys|Dorrys|\u04e7\u0434\u0437\u04e7c\w*|\u04e6\u0434\u0437\u04e7c\w*|katuba|Katuba|damal|Damal|vothi|Vothi|yemnyango|Yemnyango|\u04e7c\u043b\u044d\u043d|\u04e6c\u043b\u044d\u043d|p\u00f2rta|P\u00f2rta|pordokod\w*|Pordokod\w*)(?![^\W_])|umnyango|Umnyango|ye-alamu|Ye-alamu|alarmkodan|Alarmkodan|alarmkoda|Alarmkoda|\u1260\u122d|\u121b\u1295\u1242\u12eb|doras|Doras|dorais|Dorais|al\u00e1raim|Al\u00e1raim|bosca eochracha|Bosca eochracha|teaglaim|Teaglaim|\u0aa6\u0ab0\u0ab5\u0abe\u0a9c\u0abe|\u0a8f\u0ab2\u0abe\u0ab0\u0aae|\u0a95\u0acb\u0aae\u0aac\u0abf\u0aa8\u0ab6\u0aa8|kofar|Kofar|\u0199ararrawa|\u0198ararrawa|akwatin ma\u0253allai|Akwatin ma\u0253allai|\u0564\u057c\u0561\u0576|\u0534\u057c\u0561\u0576|\u0564n\u0582\u057c|\u0534n\u0582\u057c|\u0561\u0570\u0561\u0566\u0561\u0576\u0563|\u0531\u0570\u0561\u0566\u0561\u0576\u0563|hur\u00f0ar|Hur\u00f0ar|vi\u00f0v\u00f6runar|Vi\u00f0v\u00f6runar|lyklabox|Lyklabox|samsetning|Samsetning|eci\u043a|Eci\u043a|\u0434a\u0431\u044b\u043b|\u0414a\u0431\u044b\u043b|\u1791\u179c\u17b6\u179a|\u179a\u17c4\u1791|xoc\u043bo\u043b|Xoc\u043bo\u043b|xaa\u043bra|Xaa\u043bra|\u0434ox\u0438o\u043bo\u043b|\u0414ox\u0438o\u043bo\u043b|bieb|Bieb|kombinazzjoni|Kombinazzjoni|kaxxa ta\u010b-\u010bwievet|Kaxxa ta\u010b-\u010bwievet|\u0a26\u0a30\u0a35\u0a3e\u0a1c|\u0a05\u0a32\u0a3e\u0a30\u0a2e|\u0a15\u0a2c\u0a40\u0a28\u0a38\u0a28|\u0daf\u0ddc\u0dbb|\u0dc3\u0d82\u0dba\u0ddd\u0da2\u0db1\u0dba|der\u00ebs|Der\u00ebs|alarmit|Alarmit|kombinimin|Kombinimin|kutia e \u00e7el\u00ebsave|Kutia e \u00e7el\u00ebsave|\u0c24\u0c32\u0c41\u0c2a\u0c41|\u0c05\u0c32\u0c30\u0c02|\u0c15\u0c02\u0c2c\u0c28\u0c37\u0c28|eshig|Eshig|eshik|Eshik|signalizatsiya|Signalizatsiya|kombinatsiya|Kombinatsiya|kalit qutisi|Kalit qutisi|il\u1eb9k\u00f9n|Il\u1eb9k\u00f9n|al\u00e1\u00e0m\u00f9|Al\u00e1\u00e0m\u00f9|drws|Drws|larwm|Larwm|cyfuniad|Cyfuniad|blwch allweddi|Blwch allweddi|(?:\u0627\u0644)?\u062e\u0632(?:\u064a)?\u0646\u0629|"
                       r"(?:\u8b66\u5831|\u8b66\u62a5|\u8b66\u5099|[\u5831\u62a5]\u8b66\u5668?|\u30a2\u30e9\u30fc\u30e0|\uacbd\ubcf4|\uc54c\ub78c)\s*"
                       r"(?:\u89e3\u9664|\ud574\uc81c)(?:\u306f|\u7528)?", re.I)
# A code's generic name in lower case, which a verb then gives a number ('el código de la alarma es 1947', 'kod do
# bramy to 6629', 'the code is 4711'), unless a word near it says what kind of code ('the error code is 404')
GENERIC_CODE = re.compile(r"(?<![^\W_])(?:codes?|c(?:\u00f3|o)digo|codice|codi|codul|k(?:\u00f3|o)d(?:ja|u|em|\u00ea)?|koodi(?:lla)?|kode|"
                          r"[\u043ak][\u043eo]\u0434(?:[o\u043e][m\u043c]|[\u0443y]|[\u0442t]\u044b)?|\u071f\u0718\u0715|[k\u03ba][w\u03c9]\u03b4(?:[i\u03b9\u03af][k\u03ba][\u03cc\u03bfo][\u03c2s])?|"
                          r"m\u00e3|\u05d4?\u05e7\u05d5\u05d3|\u0627\u0644\u0631\u0642\u0645\s+\u0627\u0644\u0633\u0631\u064a|\u0627\u0644\u0631\u0645\u0632\s+\u0627\u0644\u0633\u0631\u064a|\u0631\u0642\u0645\s+\u0627\u0644\u062a\u0639\u0631\u064a\u0641\s+\u0627\u0644\u0634\u062e\u0635\u064a|(?:\u0627\u0644)?\u0631\u0645\u0632|namb(?:a|ari)\s+ya\s+siri|\u043ao\u0434o\u0442|Ko\u0434o\u0442|\u0448\u0438\u0444pa\u0442a|\u0428\u0438\u0444pa\u0442a|\u10d9\u10dd\u10d3\u10d8|\u1c99\u10dd\u10d3\u10d8|\u10d9\u10dd\u10d3\u10d8\u10d7|\u1c99\u10dd\u10d3\u10d8\u10d7|\u10d9\u10dd\u10d3\u10e1|\u1c99\u10dd\u10d3\u10e1|\u0628\u0627\u0644\u0631\u0645\u0632|k\u00f3\u00f0anum|K\u00f3\u00f0anum|k\u00f3\u00f0inn|K\u00f3\u00f0inn|k\u00f3\u00f0i|K\u00f3\u00f0i|koodiga|Koodiga|koduyla|Koduyla|k\u00f3ddal|K\u00f3ddal|\u06a9\u0648\u0688|\u067e\u06cc\u0646|\u067e\u0646|\u0b95\u0bc1\u0bb1\u0bbf\u0baf\u0b9f\u0bc1|kodea|Kodea|\u0448\u0438\u0444pa|\u0428\u0438\u0444pa|sandi|tunnusluku|\u0c95\u0ccb\u0ca1|\u06a9\u0648\u062f|\u092a\u093e\u0938\u0915\u094b\u0921|\u0915\u094b\u0921|\u092a\u093f\u0928|cod|kods|kodas|koda|kood|[\u0648\u0628\u0641]?\u0627\u0644\u0643\u0648\u062f|\u0648\u0643\u0648\u062f|\U0001e933\U0001e92e\U0001e923\U0001e92b|kodo|Kodo|\u1901\u190d|\U00010d11\U00010d21\U00010d0a|c\u00f3d|C\u00f3d|tangalt|Tangalt|kodigo|Kodigo|\u2d5c\u2d30\u2d4f\u2d33\u2d30\u2d4d\u2d5c|c\u00f4de|C\u00f4de|\u0915\u0921(?![\u0900-\u0963])|doarkoade|Doarkoade|koade|Koade|kouti|Kouti|\u043ao\u0434a|Ko\u0434a|khodi|Khodi|kodhi|Kodhi|khoutu|Khoutu|waehere|Waehere|c\u00f3digon|C\u00f3digon|c\u00f2d|C\u00f2d|\u043ao\u0434\u044b|Ko\u0434\u044b|\u043ao\u0434\u0442ap\u044b|Ko\u0434\u0442ap\u044b|\u0786\u0791|\u0786\u0791\u0786|k\u00f2d|K\u00f2d|koodu|Koodu|kaody|Kaody|koodii|Koodii|koodiin|Koodiin|kody|Kody|pa\u043c\u0437|Pa\u043c\u0437|pa\u043c\u0437\u0438|Pa\u043c\u0437\u0438|\u12ae\u12f5|\u06aa\u0648\u068a|\u0643\u0648\u062f|\u0643\u0648\u062f\u0649|\u06a9\u06c6\u062f|\u06a9\u06c6\u062f\u06cc|\u0995\u09cb\u09a1|\u0995'\u09a1|\u0b15\u0b4b\u0b21|\u05e7\u05d0\u05d3|ikhowudi|Ikhowudi|ikhodi|Ikhodi|yikhowudi|Yikhowudi|khowudi|Khowudi|\u06a9\u062f|(?:\u0161|s)ifr[aeiu]|[k\u043a][o\u043e]\u0434\u044a\u0442)(?![^\W_])|\u0e23\u0e2b\u0e2a|(?<!\u30a8\u30e9\u30fc)(?<!\u30b9\u30c6\u30fc\u30bf\u30b9)(?<!\u30bd\u30fc\u30b9)\u30b3\u30fc\u30c9", re.I)
# An alarm's name and, a few words on, a verb that switches it off ('La alarma se desactiva con el 7359', 'Larmet
# stängs av med 8855'), or its number and 'ile' (Turkish: 'Alarmı 4471 ile devre dışı bırakın'): a code's number follows
ALARM_OFF = re.compile(
    r"(?<![^\W_])(?P<alarm>alarm\w*|allarm\w*|larm\w*|h(?:\u00e4|a)lyty\w*|riaszt(?:\u00f3|o)\w*|poplach\w*|"
    r"[c\u0441]\u0438[r\u0433][h\u043d][a\u0430]\u043b\u0438\u0437[a\u0430]\u0446\w*|"
    r"[c\u0441]\u0438[r\u0433][h\u043d][a\u0430]\u043b[i\u0456]\u0437[a\u0430]\u0446\w*|"
    r"\u03c3[y\u03c5][n\u03bd][a\u03b1]\u03b3[e\u03b5][p\u03c1][m\u03bc]\w*)(?![^\W_])"
    r"(?:(?=\s+[0-9]{3,10}\s+ile\s+(?:devre|kapat|iptal|sustur))|"
    r"(?:[\s:,]+[^\s:;,]+){0,4}?[\s:,]+(?:disarm\w*|deactivat\w*|unset\w*|silenc\w*|(?:switch|turn|shut)\w*\s+off|off|"
    r"d(?:\u00e9|e)sact(?:\u00ed|i)v\w*|izklop\w*|izklju\u010d\w*|d(?:\u00e9|e)sarm\w*|desativ\w*|deslig\w*|apag\w*|disattiv\w*|disinser\w*|spegn\w*|"
    r"uitgeschakeld|uitschakel\w*|uitzetten|(?:zet|schakel)\w*\s+(?:\S+\s+)?uit|"
    r"(?:st(?:\u00e4|a)ng|sl(?:\u00e5|a)|skru|koppl)\w*\s+av|sl(?:\u00e5|a)\w*\s+fra|avaktiv\w*|deaktiv\w*|frakobl\w*|"
    r"unscharf\w*|ausschalt\w*|ausgeschaltet|abschalt\w*|entsch(?:\u00e4|a)rf\w*|rozbraj\w*|rozbroj\w*|"
    r"wy(?:\u0142|l)(?:\u0105|a)cz\w*|dezaktyw\w*|dezactiv\w*|dezarm\w*|"
    r"[c\u0441][h\u043d]\u0438[m\u043c]\w*|[c\u0441][h\u043d]\u044f\w*|[o\u043e][t\u0442][k\u043a]\u043b\u044e\u0447\w*|"
    r"[b\u0432]\u044b[k\u043a]\u043b\u044e\u0447\w*|\u0434[e\u0435][a\u0430][k\u043a][t\u0442]\u0438[b\u0432]\w*|"
    r"\u0437[h\u043d][i\u0456][m\u043c]\w*|[b\u0432]\u0438[m\u043c]\u0438[k\u043a]\w*|"
    r"[b\u0432]\u0438[m\u043c][k\u043a][h\u043d]\w*|[b\u0432][i\u0456]\u0434[k\u043a]\u043b\u044e\u0447\w*|"
    r"pois|vypn\w*|vyp(?:\u00ed|i)n\w*|kikapcsol\w*|hat(?:\u00e1|a)stalan\w*|"
    r"[a\u03b1]\u03c0[e\u03b5][n\u03bd][e\u03b5][p\u03c1]\u03b3[o\u03bf]\u03c0\w*|"
    r"nonaktif\w*|dinonaktifkan|matikan|dimatikan|armed|arma|arman|set|arm|uit\s+met|scharf\w*|inserisc\w*|devre\s+d(?:\u0131|i)(?:\u015f|s)(?:\u0131|i)|kapat\w*)(?![^\W_]))", re.I)
CODE_IS = re.compile(r"(?:\s|(?<=c)['\u2019])(?:is|es|\u00e9s|\u00e9|\u00e8|to|je|on|ist|est|\u00e4r|er|lautet|ay|ngu)\s+"
                     r"(?:(?:now|still|d(?:\u00e9|e)sormais|maintenant|jetzt|nun|ahora|ora|nu|teraz)\s+)?(?=[#*]?[0-9])",
                     re.I)
# ... or ':' or '=' after an English 'code', or a number typed on a keypad ('code: 9014', 'code 3391#'); after the
# name in another language, a few words first ('Kod alarmu w biurze: 6390', 'ПИН-код корпоративной карты 9043')
CODE_COLON = re.compile(r"(?:\s+(?:for|of|to)\s+(?:the\s+)?[^\W\d_][\w-]*(?:\s+[^\W\d_][\w-]*){0,2})?\s*[:=]\s*#?(?=[0-9])|\s+[-\u2013\u2014]\s+(?=[0-9])|\s+(?=[0-9](?:-[0-9]){3,7}(?![\w-]))|\s+(?=[0-9]{2,5}(?:\s[0-9]{2,5}){0,3}[#*])")
CODE_WORDS_BEFORE = re.compile(r"[^\s:=,;\u060c\u30010-9]{0,64}(?:\s+[^\W\d_][^\s:=,;\u060c\u3001]{0,64}){0,8}?(?:\s*[:=]|\s+[-\u2013\u2014])?\s*#?"
                               r"(?=[0-9])")      # words of 64 characters at most: each code name costs the same; no comma
                                                  # (nor Arabic or Japanese: 'الكود … CAS-02، و التيكيت رقم 4471') between
# a digit's word in English, German, French, Spanish, Italian, Portuguese, Dutch, Swedish, Russian
DIGIT_WORD = (r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|null|eins|zwei|drei|vier|f(?:\u00fc|ue)nf|"
              r"sechs|sieben|acht|neun|z(?:\u00e9|e)ro|un|deux|trois|quatre|cinq|sept|huit|neuf|cero|uno|dos|tres|"
              r"cuatro|cinco|seis|siete|ocho|nueve|due|tre|quattro|cinque|sei|sette|otto|nove|um|dois|tr(?:\u00ea|e)s|"
              r"sete|oito|nul|een|twee|drie|vijf|zes|zeven|negen|noll|ett|en|tv(?:\u00e5|a)|fyra|fem|sex|sju|"
              r"(?:\u00e5|a)tta|nio|[h\u043d][o\u043e]\u043b\u044c|[o\u043e]\u0434\u0438[h\u043d]|"
              r"\u0434[b\u0432][a\u0430]|[t\u0442][p\u0440]\u0438|\u0447[e\u0435][t\u0442]\u044b[p\u0440][e\u0435]|"
              r"\u043f\u044f[t\u0442]\u044c|\u0448[e\u0435][c\u0441][t\u0442]\u044c|"
              r"[c\u0441][e\u0435][m\u043c]\u044c|[b\u0432][o\u043e][c\u0441][e\u0435][m\u043c]\u044c|"
              r"\u0434[e\u0435][b\u0432]\u044f[t\u0442]\u044c|jeden|dwa|trzy|cztery|pi\u0119\u0107|sze\u015b\u0107|siedem|osiem|dziewi\u0119\u0107|nula|jedna|dva|t\u0159i|\u010dty\u0159i|p\u011bt|\u0161est|sedm|osm|dev\u011bt|(?:\u00e9\u00e9|ee)n|s(?:\u0131|i)f(?:\u0131|i)r|bir|iki|(?:\u00fc|u)(?:\u00e7|c)|d(?:\u00f6|o)rt|be(?:\u015f|s)|alt(?:\u0131|i)|yedi|sekiz|dokuz|dua|\u0646\u0648|\u062f\u0648|\u0635\u0641\u0631|\u0648\u0627\u062d\u062f|\u0627\u062a\u0646\u064a\u0646|\u0627\u062b\u0646\u064a\u0646|\u0627\u062b\u0646\u0627\u0646|\u062a\u0644\u0627\u062a\u0629|\u062b\u0644\u0627\u062b\u0629|\u0627\u0631\u0628\u0639\u0629|\u0623\u0631\u0628\u0639\u0629|\u062e\u0645\u0633\u0629|\u0633\u062a\u0629|\u0633\u0628\u0639\u0629|\u062a\u0645\u0627\u0646\u064a\u0629|\u062b\u0645\u0627\u0646\u064a\u0629|\u062a\u0633\u0639\u0629|\u0627\u06cc\u06a9|\u062a\u06cc\u0646|\u0686\u0627\u0631|\u067e\u0627\u0646\u0686|\u0686\u06be|\u0633\u0627\u062a|\u0622\u0679\u06be|sefer|sifr|wa7ad|wa7ed|tnen|tneen|tlete|tleteh|tlateh|arba3a|arb3a|khamse|5amse|sitteh|sab3a|sab3e|tmene|tmeneh|tmanye|tes3a|tis3a|nol|satu|tiga|empat|enam|tujuh|tuju|delapan|sembilan|sada|tolu|opat|onom|ualu|sia|\u0936\u0928\u092f|\u090f\u0915|\u0926\u094b|\u0924\u0940\u0928|\u091a\u093e\u0930|\u092a\u093e\u091a|\u091b\u0939|\u091b\u0903|\u0938\u093e\u0924|\u0906\u0920|\u0928\u094c|\u0926\u094b\u092f|\u091a\u092f\u093e\u0930|sero|isa|duwa|duha|dalawa|tatlo|tulo|upat|apat|lima|unum|unom|anim|pitu|pito|walu|walo|siyam|inki|nammay|sidoc|ferey|konoy|lehey|leehay|malhin|bacaara|baacaro|sagaala|\u04c8o\u043fo\u0439|c\u0438\u0434\u044f|\u043d\u044frap|\u0442e\u0442|ca\u043c\u043b\u04c8a\u043d|\u043ca\u0442\u02bc|c\u0438\u02bc\u0438\u0432|c\u0438\u043d\u0434e\u0442|xacy\u044e\u02bc)")
# ... or a number read in pairs of tens ('twenty-eight sixty-four', 'nineteen forty-eight')
TENS_PAIR = (r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-]+(?:one|two|three|four|five|six|seven|"
             r"eight|nine))?|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)")
SPELLED_DIGITS = re.compile(rf"(?<![\w-])(?:(?:{DIGIT_WORD}[,\u060c]?[\s-]+){{3,}}{DIGIT_WORD}|{TENS_PAIR}(?:[\s-]+{TENS_PAIR})+)(?![\w-])", re.I)
CODE_RANGE = re.compile(r"\s*(?:to|bis|\u00e0|a|al|-|\u2013)\s*[0-9]")   # 'alarm codes 7001 to 7999'
CODE_RANGE_BEFORE = re.compile(r"[0-9]\s*(?:to|bis|\u00e0|a|al|-|\u2013)\s*$")
CODE_RANGE_REACH = 8
KEYPAD = re.compile(r"[0-9](?:-[0-9]){2,7}")               # '3-8-1-6', keys pressed in turn, no standard's number
COMBINATION = re.compile(r"[0-9]{2}(?:-[0-9]{2}){2,5}")     # '17-52-84', a combination's numbers
# A number typed on a keypad ('composer 48213 sur le clavier'), given to acknowledge or open ('Alarm mit 93751
# quittieren'), pressed ('7702 basyň', '0846-ро пахш кунед', 'press 8153 to disarm') or that gets one in ('7731 gets
# you into the comms room', '7731 opens the comms room'): a code's number, whatever word names it
# A number pressed after a verb that says so in a language with no other cue, where an alarm, door or keypad is named
# in the clause (KEYPAD_PLACE): keyed_number()
PRESSED = re.compile(r"(?<![\w'])(?P<name>keying|paina|nias|pat\u014dt\u014d(?:\s+i\s+te)?|incarca|frache|apreta|brooie|gwask|t\u0142\u00f3\u010d\u0107e|hanehan|punitan|hat\u0129k\u0129ria|digi|tabaka(?:\s+na)?|tshikelela|pusha|cindzetela|tappu|smatgai|\u043d\u044b\u0446\u0446\u00e6\u0432|pouezit|typ je|sfraccate|penc\u00e9t|mia|nyiga|fyonda|presim|primi|oomi le|lomi'i 'a e|zi|pouezit\s+war)\s+(?P<number>[0-9]{4,8})(?![\w/-]|[.,][0-9])",
                     re.I)
KEYED = (re.compile(r"(?<![\w.,/-])(?P<number>[0-9]{4,10}[#*]?)\s+(?:(?:sur|on|into|at|am|auf|an|no|na|en|el|sul|op|in|"
                    r"w|na)\s+(?:(?:le|the|dem|das|o|a|el|il|la|het|de)\s+)?)?(?P<name>clavier|keypad|(?:pin\s?)?pad|padlock|cadenas|"
                    r"candado|lucchetto|cadeado|tastenfeld|"
                    r"tastatur|teclado|tastiera|toetsenbord|klawiatur\w*)(?![^\W_])", re.I),
         re.compile(r"(?<![^\W_])mit\s+(?P<number>[0-9]{3,10}[#*]?)\s+(?P<name>quittier\w*|best(?:\u00e4|ae)tig\w*|"
                    r"entsperr\w*|(?:\u00f6|oe)ffn\w*|entsch(?:\u00e4|a)rf\w*|unscharf\w*|scharf\w*)(?![^\W_])", re.I),
         re.compile(r"(?<![^\W_])(?P<name>quittier\w*|entsperr\w*|entsch(?:\u00e4|a)rf\w*|unscharf\w*)\s+mit\s+"
                    r"(?P<number>[0-9]{4,10}[#*]?)(?![\w/-]|[.,][0-9])", re.I),
         re.compile(r"(?<![\w.,/-])(?P<number>[0-9]{4,10}[#*]?)(?:-?po|\s+\u0646\u0649)?\s+(?P<name>\u043fyc|\u0926\u092c\u093e\u0909|\u00f1itt'a\w*|\u0442Ie\u0442aIa|\u0434apa|\u043d\u044er\u044b\w*|basy\w*|\u043fax\u0448\w*|"
                    r"\u0628\u06d0\u0633\u0649\w*|\u062f\u0627\u0628\u06af\u0631\w*|(?:gets|lets)\s+you\s+(?:in(?:to)?|through)|(?:opens|unlocks)\s+the)(?![^\W_])",
                    re.I),
         re.compile(r"(?<![^\W_])(?:press|enter|type|key\s+in|punch\s+in)\s+(?P<number>[0-9]{4,10}[#*]?)\s+to\s+"
                    r"(?P<name>disarm|unset|open|unlock|silence|switch\s+off|turn\s+off)(?![^\W_])", re.I),
         re.compile(r"(?<![^\W_])(?:use[sd]?|using)\s+(?P<number>(?!(?:199[0-9]|20[0-3][0-9])\s)[0-9]{4,8})\s+(?:for|on|at)\s+(?:[^\W\d_]+\s+){0,3}?"
                    r"(?P<name>doors?|gates?|keypads?|locks?|padlocks?)(?![^\W_])", re.I),   # 'We use 2580 for every door'
         re.compile(r"(?<![^\W_])(?P<name>(?:dis)?armed|unset|unlocked|opened|opens?)\s+(?:with|using|by)\s+(?:(?:the\s+)?(?:code|pin)\s+)?"
                    r"(?P<number>(?!(?:199[0-9]|20[0-3][0-9])(?![0-9]))[0-9]{4,8})(?![\w/-]|[.,][0-9])", re.I),   # 'user 2 disarmed with code 2291'
         re.compile(r"(?<![^\W_])(?P<name>pair(?:s|ed|ing)?)\s+(?:with|using)\s+(?:(?:the\s+)?(?:code|pin|passkey)\s+)?"
                    r"(?P<number>[0-9]{4,6})(?![\w/-]|[.,][0-9])(?!\s+[^\W\d_])", re.I),   # 'pairs with 7391'
         re.compile(r"(?<![\w.,/-])(?P<number>(?!(?:19|20)[0-9]{2}(?![0-9]))[0-9]{4,8}[A-D#*]?)\s+"
                    r"(?P<name>to\s+(?:open|unlock|disarm|unset|get\s+in))(?=\s*(?:[.,;!)]|$))", re.I),   # '2580C to open'
         re.compile(r"(?<![\w.,/-])(?P<number>(?!(?:19|20)[0-9]{2}(?![0-9]))[0-9]{4,8})\s*(?:\uc744|\ub97c)?\s*"
                    r"(?P<name>\ub204\ub974|\ub20c\ub7ec|\uc785\ub825)"))   # '6093 누르믄 열린데이': Korean 'press', 'enter'

# A number pressed or entered at a place, or before a key, near a keypad's place (KEYPAD_PLACE): 'press 4821 at the
# gate', 'Enter 4821 then press the bell icon on the intercom panel'
ENTERED = re.compile(r"(?<![^\W_])(?P<name>press|enter|type|key\s+in|punch\s+in)\s+(?P<number>[0-9]{4,8})\s+"
                     r"(?:(?:then|and)\s+(?:press|hit|push)|at|on)(?![^\W_])", re.I)
# Single digits typed in turn near an intruder alarm's, a door's, a gate's or a lock's name, in any language
SPACED_DIGITS = re.compile(r"(?<![\w.,/-])[0-9](?: [0-9]){3,7}(?![\w/-]|[.,][0-9])")
KEYPAD_PLACE = re.compile(r"(?<![^\W_])(?:[^\W\d_]*(?:alarm|larm)\w*|einbruch\w*|inbraak\w*|antifurto|intruder|doors?|"
                        r"gates?|keypads?|pads?|padlocks?|locks?|t(?:\u00fc|ue)r(?:en)?|portes?|puertas?|portas?|deur(?:en)?|drzwi|"
                        r"b\u00e1o\s+\u0111\u1ed9ng|intercoms?|c\u0438r\u043da\u043b\u0438\u0437a\u0446\u0438\w*|signali[sz]a\w*|alamu|alaamu|'al\u0101mi|Alam|Alarme)(?![^\W_])|\u8b66\u5831|\u62a5\u8b66|\uacbd\ubcf4|"
                        r"\u0625\u0646\u0630\u0627\u0631|\u05d0\u05d6\u05e2\u05e7\u05d4|\u0905\u0932\u093e\u0930\u092e|\u0e01\u0e19\u0e02\u0e42\u0e21\u0e22|"
                        r"\u0b06\u0b32\u0b3e\u0b30\u0b2e|\u1021\u101c\u102c\u1019", re.I)
# A safe's combination as turns of its dial ('24 right, 11 left, 37 right'), three turns or more
DIAL_TURN = r"[0-9]{1,3}\s*(?:right|left|rechts|links|droite|gauche|derecha|izquierda|destra|sinistra|direita|esquerda)"
DIAL_SIDES = r"(?:right|left|rechts|links|droite|gauche|derecha|izquierda|destra|sinistra|direita|esquerda)"
DIAL_TURN_AFTER = rf"{DIAL_SIDES}\s*(?:to\s+)?[0-9]{{1,3}}"      # 'left 32, right 14, left 7'
DIAL = re.compile(rf"(?<![\w.,])(?:(?:{DIAL_TURN}[\s,;/-]+){{2,}}(?:{DIAL_TURN}|[0-9]{{1,3}}(?![\w.,]))|"
                  rf"(?:{DIAL_TURN_AFTER}[\s,;/-]+){{2,}}{DIAL_TURN_AFTER})(?![^\W_])", re.I)   # ('17 left 32 right 5')
POSSESSIVE = re.compile(r"(?<=[0-9A-Za-z])['\u2019]s$|(?<=[0-9])['\u2019][^\W\d_]{1,4}$")   # "DEL-15's", "03.06.2026'da"
DASHED_RANGE = re.compile(r"(?<![\w.])[0-9]{3,20}[-\u2013][0-9]{3,20}(?![\w.])")   # 'alarms 2201–2210': see number_range
NUMBER_PAIR = re.compile(r"([0-9]{3,20})-([0-9]{3,20})")     # '3000-3099': see number_range
UPPER_DESIGNATION = re.compile(r"(?<![^\W_])(?!DTMF)[A-Z]{1,4}\s+$")   # 'Karat MT 550': a model's letters, not tones', before its number
VALUE_RANGE = re.compile(r"[0-9]+\s+(?:to|bis|\u00e0|al)\s+[0-9]+(?![\w-])", re.I)     # a range is no value
VALUE_RANGE_AFTER = re.compile(r"\s+(?:to|bis|\u00e0|al)\s+[0-9]", re.I)
CODE_DATE = re.compile(r"(?:19|20)[0-9]{2}[-.][0-9]{1,3}(?:[-.][0-9]{1,2})?")        # '2025-03', and '2024-017', a file's number
CODE_IS_REACH, CODE_KIND_REACH = 60, 24
# A code's number before its name, after a verb, a dash or a bracket ('4711 ist der Türcode', '4711 — код двери'):
# number_before_code(); the name says it is a code (CODE_SUFFIX)
NUMBER_FIRST = re.compile(r"(?<![\w.,/#*-])(?P<number>[0-9]{4,8}[#*]?)(?:\s*[(\u2013\u2014]\s*|\s+-\s+|\s+(?:is|ist|est|"
                          r"c['\u2019]est|es|\u00e8|\u00e9|\u00e4r|er|to|je|jest|on)\s+)(?:(?:the|der|die|das|le|la|el|il|lo|o|"
                          r"a|de|het|den|det|un|una|ein|eine)\s+)?(?P<name>[^\s,;()]+)", re.I)
NUMBER_THEN_CODE = re.compile(r"(?<![\w.,/#*-])(?P<number>[0-9]{4,8}[#*]?)\s+(?P<name>kod(?:u|uyla)|k(?:\u00f3|o)ddal|combination|combo)"
                              r"(?:\s+il(?:\u0259|e))?(?![^\W_])", re.I)
# A number that starts a clause whose words then name a code, in any language that borrows the word ('6619 — yzky
# derwezäniň kody', '4477 bụ koodu ọnụ ụzọ azụ', '9012 yikhowudi yesango'): number_before_code()
LEADING_NUMBER = re.compile(r"(?:^|(?<=\n)|(?<=[.;!?\u0964\u1362\u06d4])\s+)\W{0,3}(?P<number>[0-9]{4,8})(?![\w/.,-])"
                            r"(?P<rest>[^.;!?\n\u0964\u1362\u06d4]{0,60})")
CODE_STEM = re.compile(r"(?<![^\W_])(?:k(?:o|\u00f2|\u00f3|oo)d|kaody|khoutu|Khoutu|khodi|Khodi|kodhi|Kodhi|waehere|Waehere|c\u00f3digo|C\u00f3digo|c\u00f2d|C\u00f2d|\u0786\u0791|pa\u043c\u0437|Pa\u043c\u0437|\u0995'\u09a1|\u0995\u09cb\u09a1|\u0b15\u0b4b\u0b21|\u12ae\u12f5|\u06aa\u0648\u068a|\u0643\u0648\u062f|\u06a9\u06c6\u062f|\u06a9\u0648\u062f|\u05e7\u05d0\u05d3|\u05e7\u05d5\u05d3|\u043ao\u0434|Ko\u0434|\u0a95\u0acb\u0aa1|\u0a15\u0a21|\u0c15\u0c21|\u0d15\u0d4b\u0d21|\u0915\u094b\u0921|\u06a9\u062f|\u06a9\u0648\u0688|\u056fn\u0564|\u053fn\u0564|\u0d9a\u0dda\u0dad|\u1780\u178a|\u10d9\u10dd\u10d3|\u1c99\u10dd\u10d3|\u0e23\u0e2b\u0e2a|\u0c95\u0ccb\u0ca1)|khowudi", re.I)
CODE_SUFFIX = re.compile(r"cod|kod|k\u00f3d|koodi|kode|[k\u043a][o\u043e]\u0434|pin|combina|kombina", re.I)
CODE_KIND = re.compile(r"(?<![^\W_])(?:error|status|review|response|exit|return|cause|reject|reason|result|http|country|"
                       r"area|postal|po(?:\u0219|\u015f)tal|(?:\u0627\u0644)?\u0628\u0631\u064a\u062f\u064a|zip|post|product|article|item|order|tracking|reference|source|iso|fehler\w*|"
                       r"erreur|errore|error|b\u0142\u0119du|chyby|virhe\w*|\u043e\u0448\u0438\u0431\u043a\w*|"
                       r"[\u043eo]\u0448\u0438\u0431\u043a\w*|fuente|sorgente|quell\w*|\u017ar\u00f3d\u0142ow\w*|"
                       r"zdrojov\w*|pocztow\w*|fiscal\w*|\u012fmon\w*|pvm|delatnost\w*|[b\u0432]\u044d\u0434|\u0448yy\u0434a\u043d|\u0428yy\u0434a\u043d\w*|\u0939\u0932\u093e\u0915|\u0637\u0631\u062d|\u067e\u0631\u0648\u0698\u0647|qr|bar|proje[ck]t\w*|proyecto|progetto|projet|cost|budget|tariff|tax|vat|naics|sic|cpv|cnae|nace|"
                       r"ateco|pkd|hs|taric|ean|gtin|iban|bic|swift|sku|posta|po\u00e7ta|\u044d\u049b\u0436\u0436|\u042d\u049a\u0416\u0416|c\u044d\u049b|C\u042d\u049a|\u09a1\u09be\u0995|\u0b21\u0b3e\u0b15|\u0688\u0627\u06a9|\u00fclke|pos|b\u01b0u|caen|cig|cup|nc|customs|douan\w*|"
                       r"doganal\w*|aduan\w*|zoll\w*|mcc|mnc|plmn|lac|expediente|licitaci(?:\u00f3|o)n|l(?:\u00ed|i)nea|asl|\u10e1\u10d0\u10d8\u10d3\u10d4\u10dc\u10e2\u10d8\u10e4\u10d8\u10d9\u10d0\u10ea\u10d8\u10dd|"
                       r"\u03c3\u03c6\u03ac\u03bb\u03bca\u03c4o\u03c2|\u03a3\u03c6\u03ac\u03bb\u03bca\u03c4o\u03c2|\u03c3\u03c6\u03ac\u03bb\u03bca|\u03a3\u03c6\u03ac\u03bb\u03bca|\u03c0e\u03bb\u03ac\u03c4\u03b7|\u03a0e\u03bb\u03ac\u03c4\u03b7|\u03c0po\u03ca\u03ccn\u03c4o\u03c2|\u03a0po\u03ca\u03ccn\u03c4o\u03c2|\u03adp\u03b3o\u03c5|\u0388p\u03b3o\u03c5|\u03c4a\u03c7\u03c5\u03b4po\u03bci\u03ba\u03cc\u03c2|Ta\u03c7\u03c5\u03b4po\u03bci\u03ba\u03cc\u03c2|\u05e9\u05d2\u05d9\u05d0\u05d4|\u05de\u05d5\u05e6\u05e8|\u05dc\u05e7\u05d5\u05d7|\u05e4\u05e8\u05d5\u05d9\u05e7\u05d8|l\u1ed7i|L\u1ed7i|nh\u00e2n\s+vi\u00ean|Nh\u00e2n\s+vi\u00ean|tr\u1ea1m|Tr\u1ea1m|s\u1ea3n\s+ph\u1ea9m|S\u1ea3n\s+ph\u1ea9m|kh\u00e1ch\s+h\u00e0ng|Kh\u00e1ch\s+h\u00e0ng|d\u1ef1\s+\u00e1n|D\u1ef1\s+\u00e1n|b\u01b0u\s+ch\u00ednh|B\u01b0u\s+ch\u00ednh|ralat|Ralat|kesalahan|Kesalahan|proyek|Proyek|projek|Projek|produk|Produk|pelanggan|Pelanggan|pegawai|Pegawai|karyawan|Karyawan|pekerja|Pekerja|hata|Hata|hatasi|Hatasi|\u00fcr\u00fcn|\u00dcr\u00fcn|m\u00fc\u015fteri|M\u00fc\u015fteri|personel|Personel|gre\u0161ke|Gre\u0161ke|gre\u0161ka|Gre\u0161ka|gre\u0161aka|Gre\u0161aka|rpe\u0448\u043aa|\u0413pe\u0448\u043aa|rpe\u0448\u043a\u0438|\u0413pe\u0448\u043a\u0438|\u043fpoe\u043a\u0442a|\u041fpoe\u043a\u0442a|\u043fpo\u0434y\u043a\u0442a|\u041fpo\u0434y\u043a\u0442a|\u043a\u043b\u0438e\u043d\u0442a|K\u043b\u0438e\u043d\u0442a|c\u043by\u0436\u0438\u0442e\u043b|C\u043by\u0436\u0438\u0442e\u043b|\u043fo\u0449e\u043dc\u043a\u0438|\u041fo\u0449e\u043dc\u043a\u0438|\u043fo\u043c\u0438\u043b\u043a\u0438|\u041fo\u043c\u0438\u043b\u043a\u0438|\u043fo\u043c\u0438\u043b\u043aa|\u041fo\u043c\u0438\u043b\u043aa|\u043a\u043bie\u043d\u0442a|K\u043bie\u043d\u0442a|\u043fpa\u0446i\u0432\u043d\u0438\u043aa|\u041fpa\u0446i\u0432\u043d\u0438\u043aa|\u043fo\u0448\u0442o\u0432\u0438\u0439|\u041fo\u0448\u0442o\u0432\u0438\u0439|e\u0434p\u043foy|\u0404\u0434p\u043foy|\u0404\u0414P\u041fO\u0423|E\u0434p\u043foy|klaidos|Klaidos|kliento|Kliento|darbuotojo|Darbuotojo|pa\u0161to|Pa\u0161to|projekto|Projekto|\u062e\u0637\u0627|\u067e\u0631\u0648\u0698\u0647|\u0645\u062d\u0635\u0648\u0644|\u0645\u0634\u062a\u0631\u06cc|\u06a9\u0627\u0631\u0645\u0646\u062f|\u067e\u0633\u062a\u06cc|erro|Erro|produto|Produto|cliente|Cliente|funcion\u00e1rio|Funcion\u00e1rio|barcode|Barcode|barcodes|Barcodes)(?![^\W_])|\u0e1e\u0e19\u0e01\u0e07\u0e32\u0e19|\u0e44\u0e1b\u0e23\u0e29\u0e13\u0e22|\u0e02\u0e2d\u0e1c\u0e14\u0e1e\u0e25\u0e32\u0e14|\u0e1c\u0e25\u0e15\u0e20\u0e13\u0e11|\u0e25\u0e01\u0e04\u0e32|\u0e2a\u0e19\u0e04\u0e32|\u0e42\u0e04\u0e23\u0e07\u0e01\u0e32\u0e23", re.I)
CLOCK_LOCK = re.compile(r"(?<![^\W_])(?:ptp|gnss|gps|pll|phase|frequency|clock|sync|timing|carrier|signal)[\s-]$",
                        re.I)                         # 'PTP lock', a clock's state, no lock with a code
CODE_YEAR = re.compile(r"199[0-9]|20[0-3][0-9]")    # a recent year, not a code ('door installed 2019')
CODE_NUMBER = re.compile(r"(?<![\w.,/-])(?:[0-9]{3,10}|[0-9]{3,7}[A-D]|[0-9]{2,5}(?:[ -][0-9]{2,5}){1,3}|[0-9](?: [0-9]){3,7}|"
                         r"[0-9]{1,2}(?: ?- ?[0-9]{1,2}){2,4})(?:-?[#*])?"
                         r"(?![\w/-]|[.,][0-9])")
# Where a sentence ends: not after an initial ('P.I.N. 4071')
SENTENCE_END = re.compile(r"(?<=[.!?;])(?<![\s.][^\W\d_]\.)(?<!^[^\W\d_]\.)\s+(?=\S)|(?<=[\u3002\uff01\uff1f\u0964\u0f0d\u1362])")
CJK_DIGITS = re.compile(r"(?<=[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])(?=[0-9])|"
                        r"(?<=[0-9])(?=[\u0620-\u064a\u066e-\u06d3\u06d5\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])")
# ('コードは2609', '2753یە': no word joins them)
CODE_CLAUSE_END = re.compile(r"[;\n\u0589\u0964\u0965\u1362\u17d4]|\.(?:\s|$)")   # and Armenian, Indic, Ethiopic, Khmer stops
CODE_ABBREVIATION = re.compile(r"(?<![^\W_])(?P<name>[k\u03ba][w\u03c9]\u03b4|c\u00f3d|ngu)[.-](?=\s|(?<=u-)[0-9])", re.I)
# ('κωδ. συναγερμού: 3344': no clause's end; Zulu 'ngu-7720', 'is 7720': the verb apart from its number)
CODE_UNIT = re.compile(r"\s*(?:%|(?:s|ms|secs?|seconds?|minutes?|min|hours?|h|days?|m|km|mm|cm|kg|v|w|kw|hz|khz|mhz|ghz|x|"
                       r"attempts?|tries|times|units?|pieces?|eur|usd|chf|models?|series)(?![^\W_]))", re.I)
CODE_LABEL_REACH = 12
LIST_GAP = re.compile(r"\s*(?:,|and|und|et|y|e|&|/)\s*", re.I)      # between the numbers of a list
CODE_LABEL = re.compile(r"(?<![^\W_])(?:no\.?|nr\.?|n\u00b0|n\u00ba|numbers?|serial|s/n|sn|seriennummer|modell|mod(?:\u00e8|e)le|"
                        r"modelo|num(?:\u00e9|\u00fa|e|u)ro|auftrag|bestellung|vertrag|rechnung|pedido|commande|ordine|rule|regla|bureau|"
                        r"salle|oficina|ufficio|#|room|raum|[\u05d1\u05d4\u05dc]?\u05d7\u05d3\u05e8|racks?|cabinets?|building|floor|site|level|model|type|ticket|"
                        r"\u0631\u0642\u0645|(?:\u0627\u0644)?\u062a\u064a\u0643\u064a\u062a|"
                        r"order|port|event|id|ref|case|incident|error|alert|version|release|rfc|iso|iec|ieee|din|nist|"
                        r"etsi|itu|ansi|sp|ts|contract|invoice|account|customer|client|cpv|standard|norm|(?:eur|usd|gbp|chf|"
                        r"jpy|cny|krw|pln|try|rub|sek|nok|dkk|[$\u20ac\u00a3\u00a5])(?:\s*[0-9]{1,3})?)\s*$|(?:nummer|-nr\.?)\s*$", re.I)
# A model's name before a number ('model Paxton 375-110'; a number with a keypad letter after a brand's word, 'Master
# Lock 178D'): no code's number
MODEL_BEFORE = re.compile(r"(?<![^\W_])(?:model\w*|mod(?:\u00e8|e)le|modelo|type|typ|series|serie)\s*:?\s+(?:[A-Z][\w-]*\s+){1,2}$",
                          re.I)
BRAND_BEFORE = re.compile(r"(?<![^\W_])[A-Z][a-z]+\s+$")
MODEL_REACH = 40
# A password's own label, not a credential's, token's or secret's ('password', 'passcode', 'PGPASSWORD', 'pwd')
PASSWORD_WORD = re.compile(r"pass|pw|psk|kennwort|contrase|senha", re.I)
LABEL_QUOTES = re.compile("[\"'\u2019\u201d]")            # not shown in a refusal's label
SIM_CODE = re.compile(r"[0-9]{4,}|[0-9A-Fa-f]{16,}")
SIM_KEY = re.compile(r"[0-9A-Fa-f]{16,}")
# What follows a labelled value on its line, up to a letter or digit: the value's first token is then followed by
# words (FOLLOWED_BY_WORDS)
FOLLOWED_BY_WORDS = re.compile(r"[^\n]*?[^\W_]")
# What ends the first token of a labelled value, besides whitespace: an en or em dash ('Tr0ub4dor&3xyz—rotate')
TOKEN_DASHES = re.compile("[\u2013\u2014\u3001\uff0c\uff1b]+")   # and CJK commas
TOKEN_BREAKS = re.compile("[\u2013\u2014():]+")    # in text with CJK, whose brackets have no space: 'v17.5.0（NETCONF）と'
# A value that is a pointer, not a password: a URL ('https://vault.example/item/12'), or a path of two or more
# segments after '/', './', '../' or '~/' ('/opt/open5gs/etc', '~/keys/amf'), or of three or more without
# ('configs/open5gs/amf.yaml'); a bare '/X' is judged as X
URL_VALUE = re.compile(r"[a-z][a-z0-9+.-]*://")   # in lower case
PATH_START = re.compile(r"(?:\.{1,2}|~)?/")
WINDOWS_PATH = re.compile(r"(?:[A-Za-z]:|\\{1,2}[\w.$-]+)(?:\\[\w.$-]+)+\\?")   # 'C:\ops\keys', '\\nas01\ops'
PATH_SEGMENT = r"[\w.+~@%-]+"
PATH_AFTER_START = re.compile(rf"{PATH_SEGMENT}(?:/{PATH_SEGMENT})+/?")
PATH_WITHOUT_START = re.compile(rf"{PATH_SEGMENT}(?:/{PATH_SEGMENT}){{2,}}/?")
# A quantity, in lower case: digits, an optional '+' and a unit ('90-days', '6-digits', '12+chars', '12-stellig',
# 'min12chars'), with a decimal point ('3.5ghz'); several joined by '/' ('1h/24h'), or one followed by a word that
# qualifies it ('5ghz-only'); after an ALL-CAPS key of up to 6 letters and '=' (QUANTITY_KEY, in the token's own
# case: 'TTL=15min', not 'hunter=15min'): quantity()
QUANTITY_TEXT = (
    r"(?:(?:min|max)[-_]?)?[0-9]+(?:\.[0-9]+)?\+?[-_]?(?:s|secs?|seconds?|ms|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|"
    r"wks?|weeks?|months?|y|yrs?|years?|digits?|chars?|characters?|letters?|symbols?|words?|bits?|bytes?|[kmgt]i?b|"
    r"[kmgt]?hz|[kmg]bps|dbm?|"
    r"iterations?|rounds?|times|attempts?|tries|uses?|users?|stellig|stellen|zeichen|ziffern|tagen?|stunden|"
    r"minuten|monate|jahre|caract\u00e8res|caracteres|chiffres|jours|heures|mois|ans|d\u00edgitos|digitos|"
    r"d\u00edas|dias|horas|meses|a\u00f1os|anos)")
QUANTITY_KEY = re.compile(r"[A-Z]{1,6}=")
QUANTITY = re.compile(rf"{QUANTITY_TEXT}(?:/{QUANTITY_TEXT})*(?:-(?:only|max|min|long|wide|band|valid))?")
# A version ('v1.15.2', '2.2.1-rc1': an optional 'v', a major of at most 3 digits, then .minor[.patch][-suffix]; not
# 'v8472.91'), or a 3GPP release ('rel-17', 'r17'), in lower case
VERSION = re.compile(r"v?[0-9]{1,3}\.[0-9]+(?:\.[0-9]+)?(?:[-.+_]?(?:rc|alpha|beta|pre|dev|post|a|b)[0-9]*)?|"
                     r"(?:rel|r)[-_.]?[0-9]{1,2}")
# A placeholder for a value kept elsewhere: '${AMF_DB_PASSWORD}', '$DB_PASSWORD', '%DB_PASSWORD%', '{{db_password}}';
# its name is letters and underscores, with digits only right after an underscore (PLACEHOLDER_NAME: 'DB_PASSWORD_2',
# not 'HUNTER22', 'db_pass1' nor 'K7pQ2xLm9')
PLACEHOLDER_NAME = r"_*[A-Za-z]+(?:_+(?:[A-Za-z]+|[0-9]+))*_*"
PLACEHOLDER_UPPER = r"_*[A-Z]+(?:_+(?:[A-Z]+|[0-9]+))*_*"
VALUE_PLACEHOLDER = re.compile(rf"\$\{{{PLACEHOLDER_NAME}\}}|\${PLACEHOLDER_UPPER}|%{PLACEHOLDER_UPPER}%|"
                               rf"\{{\{{-?{PLACEHOLDER_NAME}(?:\.{PLACEHOLDER_NAME})*-?\}}\}}")
# A '%NAME%' placeholder (three characters or more in its name, so not a byte such as '%AB%'), kept as it is by
# percent_decoded()
PERCENT_PLACEHOLDER = re.compile(rf"(%(?=[A-Z_]{{3}}){PLACEHOLDER_UPPER}%)")
PLACEHOLDER_EDGES = "\"'\u201c\u201d\u2018\u2019()[]<>.,;:!?"
# What joins names in one token ('JWT/RS256', 'Ki/OPc', '5G-AKA/EAP-AKA\'', 'SHA256+salted')
NAME_JOIN = re.compile(r"[/+]")
# A ticket or record ID: upper-case letters and a number ('OPS-1234', 'INC0012345', 'OPS-20260114-0042'), or, in
# lower case, a record's word and a number ('ticket-4711')
UPPER_ID = re.compile(r"[A-Z]{2,}[-_]?[0-9]+(?:[-_][0-9]+)*")
# ... a name, after a password's name, only if its letters name a standard, scheme or period, it is a ticket's (five
# digits or more: 'INC0012345') or it holds '-' or '_'; 'HERO99', 'TOOR123', 'LAB2025' are passwords (upper_name)
KNOWN_UPPER = frozenset("rfc iso iec wpa sha aes md fips ts tr en etsi ieee pbkdf eap tls ike ikev nr lte gsm umts sp nist "
                        "cis pci soc bsi x tpm ssl ssh dss pkcs hmac crc rsa ecc ecdsa ed rel ipv dect ts tdd fdd fy cy q h cw wk kw ww".split())
RECORD_ID = re.compile(r"(?:ticket|issue|case|change|incident|request|bug|task|story|ref|req)[-_#]?[0-9]+")
# Public names, in lower case, that are no secret only as a whole token or a whole '/'- or '+'-joined segment
# ('Open5GS', 'Ki/OPc'); glued to digits or symbols they are judged ('Open5GS-2024', 'Magma2024', 'Ki7q-Sp4x.Ts9z'):
# TOOL_NAMES, the stacks' and tools' names, also written with a dotted version (TOOL_VERSION: 'Open5GS-2.7.1',
# 'free5GC-v3.4', 'Magma1.8'; not 'SoftHSM2'); then post-quantum algorithms' names, and the 3GPP abbreviations 'Ki'
# (subscriber key), 'OPc' (operator key) and 'Rel' (release), which name a secret or a release but hold none
TOOL_NAMES = (r"open5gs|free5gc|openairinterface|oai|srsran|ocudu|ueransim|magma|pycrate|kubernetes|k8s|ansible|"
              r"keycloak|openssl|softhsm|yubihsm|yubikey|utimaco|nshield|cloudhsm")
TOOL_NAME = re.compile(TOOL_NAMES + r"|kyber|ml-kem|ml-dsa|slh-dsa|dilithium|falcon|sphincs|opc|op|ki|k|rel")
TOOL_VERSION = re.compile(rf"(?:{TOOL_NAMES})[-_]?v?[0-9]{{1,3}}\.[0-9]+(?:\.[0-9]+)?")
# A value, in lower case, that names algorithms, protocols, standards or schemes, alone or joined by '-', '_', '.',
# '(' or ')' to another such name, a number or version ('12', 'v3', '1x', '63b') or a word that describes it
# ('SHA256-hashed', 'EAP-TLS1.3', '802.1X', 'PBKDF2-HMAC-SHA256', 'bcrypt(12)'): scheme_name() reads it token by token,
# the longest name first, so every regex is tried once at each place (linear time)
SCHEME_NAME = re.compile(
    r"sha(?:256|512)crypt|md5crypt|sha-?(?:1|2|224|256|384|512)|sha3|sha2|md5|bcrypt|scrypt|yescrypt|"
    r"argon2(?:id|i|d)?|pbkdf2|hmac(?:-sha-?(?:1|256|384|512))?|aes-?(?:128|192|256)?(?:-(?:gcm|cbc|ctr|ccm))?|"
    r"gcm|cbc|rsa(?:-?(?:2048|3072|4096))?|ecdsa|ecdh|dh|ed25519|ed448|x25519(?:mlkem768)?|x448|curve25519|"
    r"p-?(?:256|384|521)|secp(?:224|256|384|521)[rk]1|prime(?:192|256)v1|brainpoolp(?:256|384|512)[rt]1|"
    r"ml-?kem-?(?:512|768|1024)|hkdf|"
    r"chacha20|poly1305|[rpeh]s(?:256|384|512)|jwt|jws|jwe|jwk|"
    r"wpa[23]?(?:-(?:sae|psk|enterprise|personal|eap))?|sae|psk|eap(?:-(?:tls|ttls|aka'?|peap|sim))?|peap|"
    r"5g-aka|aka'?|3gpp|milenage|tuak|oauth2?|oidc|saml2?|kerberos|ldaps?|tls-?1\.[0-3]|tls|dtls|mtls|pki|hsm|"
    r"tpm2?|totp|hotp|fido2?|u2f|webauthn|passkeys?|x\.?509|pkcs|pem|der|ntlmv?2?|radius|suci|ecies|sshv2|ssh|"
    r"ipsec|ikev2|ike|snmpv[123]c?|snmp|httpv?[123]|snow3g|zuc|kasumi|802|ieee|ts|nist|sp|rfc|iso|sk|vault|yubikey|"
    r"base(?:64|32|16)(?:url)?|"
    r"release|version|rev")
SCHEME_NUMBER = re.compile(r"v?[0-9]+[a-z]?")
SCHEME_WORD = re.compile(r"hashed|salted|encrypted|stored|only|based|native|protected|managed|rotated|signed|wrapped|"
                         r"keys?|certs?|certificates?")
SCHEME_JOIN = re.compile(r"[-_.()]+")
SCHEME_TOKENS = ((SCHEME_NAME, True), (SCHEME_NUMBER, False), (SCHEME_WORD, False), (SCHEME_JOIN, False))
# A word glued to a number, the commonest made-up password: 'Welcome-2024', 'Summer_2024' (not 'OPS-1234', a ticket)
WORD_NUMBER = re.compile(r"[A-Z]?[a-z]+[-_.@#&+*$%]*[0-9]+|[0-9]+[-_.@#&+*$%]*[A-Z]?[a-z]+")
# A name joined to numbers, as products, versions and standards are named ('srsRAN_4G', 'SoftHSM2', 'Ubuntu22.04',
# 'ISO27001-aligned', 'Q3-2025', 'exp=15min'): parts between '-', '_', '.' or '=' (NAME_SEPARATORS), each letters and
# numbers of at most 5 digits with at most two changes between them (NAME_PART); at least 3 letters with a vowel in
# all, or a part of capitals and a number (UPPER_NUMBER: 'Q3', 'RFC7519'); at most 3 changes between letters and
# digits in all (name_number: not 'Ki7q-Sp4x.Ts9z', 'K7pQ2xLm9')
NAME_SEPARATORS = re.compile(r"[-_.=]+")
# A word glued to a year, the commonest weak password ('Summer2024', 'Welcome-2024'): never taken for a name
WORD_YEAR = re.compile(r"[A-Za-z]{3,}[-_.]?(?:19|20)[0-9]{2}")
# ... or to a year or a release after a password's name, however much it reads as schemes ('dh'+'aka', 'rsa', 'sha')
GLUED_YEAR = re.compile(r"[A-Za-z][a-z]+[-_.]?(?:19[5-9][0-9]|20[0-3][0-9])[!?#*$%&@.]*|[Rr]el(?:ease)?[0-9]{1,2}")
# The commonest weak passwords' words, also in simple look-alike spellings ('P@ssw0rd', 'Adm1n'): glued to digits, with
# an optional '-', '_', '.', '@' or '!' around them ('Password1', 'Admin123', '2024Summer', 'Huawei-123'), or spelled
# with look-alikes alone ('Passw0rd'), such a token is a password after any label, though words follow (weak_password)
WEAK_WORDS = ("password", "passwort", "welcome", "admin", "administrator", "root", "test", "guest", "user", "qwerty",
              "secret", "letmein", "changeme", "default", "summer", "winter", "spring", "autumn", "fall", "dragon",
              "monkey", "master", "huawei", "sommer", "herbst", "nokia", "ericsson", "cisco", "samsung", "zte",
              "oracle", "tiger")
WEAK_FOLDS = {"a": "[a@4]", "e": "[e3]", "i": "[i1]", "o": "[o0]", "s": "[s$5]"}
WEAK_WORD = "(?:" + "|".join("".join(WEAK_FOLDS.get(c, c) for c in w)
                             for w in sorted(WEAK_WORDS, key=len, reverse=True)) + ")"
WEAK_DIGITS = "[-_.@!]?[0-9]{1,8}[-_.@!]?"
WEAK_PASSWORD = re.compile(f"(?:{WEAK_DIGITS})?{WEAK_WORD}(?:{WEAK_DIGITS})?", re.I)
NAME_PART = re.compile(r"[A-Za-z]+(?:[0-9]{1,5}[A-Za-z]*)?|[0-9]{1,5}(?:[A-Za-z]+(?:[0-9]{1,5})?)?")
UPPER_NUMBER = re.compile(r"[A-Z]{1,5}[0-9]{1,5}")
VOWEL = re.compile(r"[AEIOUaeiou]")
LETTER_DIGIT_CHANGE = re.compile(r"[A-Za-z](?=[0-9])|[0-9](?=[A-Za-z])")
SECRET_VALUE_PARTS = re.compile(r"[-_./:@#?=&+,;]+")
SECRET_VALUE_EDGES = "\"'\u201c\u201d\u2018\u2019()[]{}<>.,;:!?\u060c\u061b\u3001\u3002\uff0c\uff1a\uff1b\u1361\u1362\u1363\u1364\u1365"
SECRET_VALUE_LENGTH = 6
# A user and password before a host, without a scheme, as ssh and scp take them: 'alice:Hunter2pw@git.example.org';
# not 'mailto:alice@example.org', whose 'user' is a scheme (ADDRESS_SCHEMES), nor a time or ports ('10:30@...')
ADDRESS_PASSWORD = re.compile(r"(?<![\w.+/:-])(?P<user>[\w.+-]+):(?P<password>[^\s:@/]+)@[\w-]+(?:\.[\w-]+)+")
DIGITS = re.compile(r"[0-9]+")
ADDRESS_SCHEMES = ("mailto", "sip", "sips", "xmpp", "im", "pres", "tel", "urn", "news", "acct", "cid", "mid")
# A letter or digit of any script: an answer needs one
LETTER_OR_DIGIT = re.compile(r"[^\W_]")
# 'not needed', in the spellings people type, and the reason after it
NOT_NEEDED = re.compile(r"^not[\s_\-\u2010-\u2015]*needed\b(?P<reason>.*)$", re.I | re.S)
# A reason for 'not needed' that only puts the answer off: 'tbd', 'TODO' (its letters and digits, in any case)
PLACEHOLDER_REASON = re.compile(r"todo|fixme|xxx|tbd", re.I)
# An answer that only puts the answer off, refused on an item that takes free text ('pending', 'TBD', 'to be
# confirmed', 'n/a', '?'), in any case, with punctuation and spaces around it (a routing item declares its own
# `pending` and `undecided`); ASCII rules, as the page's twin reads them; tried on answers of at most PUT_OFF_CHARS
# (H15-5) a spreadsheet's error value ('#REF!', '#VALUE!', '#NAME?', '#DIV/0!', '#NULL!', '#NUM!', '#N/A'; Google
# Sheets' '#ERROR!', LibreOffice's 'Err:508', and localised ones: '#WERT!', '#¡VALOR!', '#NV', '#N/D') or a
# missing value as a program writes it ('nan', 'null'), a template's prompt ('Type your answer here'), a Word form's
# placeholder ('Click or tap here to enter text.', 'Choose an item.'), and a bracketed template ('[answer here]',
# '<answer>')
PUT_OFF = re.compile(r"[\W_]*(?:pending|undecided|tb[dac]|to[\W_]+be[\W_]+(?:confirmed|decided|determined)|todo|"
                     r"n/a|n\.?a|\?|#(?:ref!|value!|name\?|div/0!|null!|num!|spill!|calc!|field!|blocked!|busy!|"
                     r"connect!|unknown!|getting_data)|#[\W_]?[a-z\u00c0-\u00ff]{1,12}(?:/[a-z0-9]{1,4})?[!?]|#n/[a-z]|#nv|"
                     r"err:[0-9]{3}|loading|1900-01-00|0?0[/.]0?1[/.]1900|1899-12-30|30[/.]12[/.]1899|12/30/1899|"
                     r"nan|null|idk|dunno|not[\W_]+(?:sure|known(?:[\W_]+yet)?)|don[\W_]?t[\W_]+know|none[\W_]+yet|"
                     r"(?:type|enter|write)[\W_]+(?:your[\W_]+)?answer"
                     r"(?:[\W_]+here)?|(?:your[\W_]+)?answer[\W_]+here|your[\W_]+answer|see[\W_]+above|"
                     r"siehe[\W_]+oben|k[\W_]*a|keine[\W_]+angabe|idem|dit+o|lorem[\W_]+ipsum.*|"
                     r"click(?:[\W_]+or[\W_]+tap)?(?:[\W_]+here)?[\W_]+to[\W_]+enter[\W_]+(?:a[\W_]+)?(?:text|date)|"
                     r"choose[\W_]+an[\W_]+item|(?:enter|type)[\W_]+(?:text[\W_]+)?here|"
                     r"(?:please[\W_]+)?select(?:[\W_]+an?[\W_]+(?:option|item|value))?|"
                     r"klicken[\W_]+oder[\W_]+tippen[\W_]+sie[\W_]+hier[\W_]+um[\W_]+text[\W_]+einzugeben|"
                     r"w(?:\u00e4|\u00c4|ae)hlen[\W_]+sie[\W_]+ein[\W_]+element[\W_]+aus|"
                     r"cliquez[\W_]+ou[\W_]+appuyez[\W_]+ici[\W_]+pour[\W_]+entrer[\W_]+du[\W_]+texte|"
                     r"choisissez[\W_]+un[\W_]+(?:\u00e9|\u00c9|e)l(?:\u00e9|\u00c9|e)ment|elija[\W_]+un[\W_]+elemento|"
                     r"haga[\W_]+clic[\W_]+o[\W_]+pulse[\W_]+aqu(?:\u00ed|\u00cd|i)[\W_]+para[\W_]+escribir[\W_]+texto|"
                     r"(?:will|to)[\W_]+follow|noch[\W_]+offen|later|(?:same[\W_]+)?as[\W_]+(?:per[\W_]+)?(?:the[\W_]+)?"
                     r"profile(?:[\W_]+[a-z-]+)?|same[\W_]+as[\W_]+above|"
                     r"placeholder|asdf|qwerty|x{3,}|test|dummy|to[\W_]+be[\W_]+advised|see[\W_]+below|"
                     r"siehe[\W_]+unten|offen|en[\W_]+attente|\u00e0[\W_]+voir|pendiente|da[\W_]+definire|"
                     r"nog[\W_]+niet[\W_]+bekend|\u691c\u8a0e\u4e2d|(?:yes|no)?[\W_]*assumed|"
                     r"\[[a-z _-]*\]|<[a-z _-]*>|work[\W_]+in[\W_]+progress|wip|in[\W_]+progress|coming[\W_]+soon|"
                     r"(?:waiting|awaiting)(?:[\W_]+(?:on|for))?(?:[\W_]+[a-z]+)?|\\n|na_(?:character|integer|real)_|"
                     r"my[\W_]+answer|answer|response|text|short[\W_]+text|paragraph|choose(?:[\W_]+an?[\W_]+option)?|"
                     r"enter[\W_]+text|untitled(?:[\W_]+(?:question|form))?|no[\W_]+file[\W_]+chosen|"
                     r"(?:choose|add)[\W_]+file|click[\W_]+to[\W_]+add[\W_]+text|type[\W_]+something|sample[\W_]+text|"
                     r"add[\W_]+a[\W_]+comment|insert[\W_]+text(?:[\W_]+here)?|please[\W_]+specify|other|"
                     r"option[\W_]*[0-9]+|(?:column|field|colonne|columna|spalte)[\W_]*[0-9]+|name|description|value|"
                     r"as[\W_]+above|same|s\.\s?o\.?|n\.\s?v\.\s?t\.?|formula[\W_]+parse[\W_]+error|fixme|changeme|"
                     r"sample[\W_]+answer|insert[\W_]+answer(?:[\W_]+here)?|\{\{[^{}]*\}\}|"
                     r"see[\W_]+(?:attached|attachment|e-?mail|mail)|as[\W_]+discussed|siehe[\W_]+anhang|"
                     r"(?:tb[dac]|pending|todo|to[\W_]+follow)[\W_]+(?:by|until|till|before|after|on|next|end[\W_]+of)[\W_]+"
                     r"[a-z0-9]+(?:[\W_]+[a-z0-9]+)?|tb[dac][\W_]*\([^()]{1,30}\)|(?:will|to|still)[\W_]+(?:ask|check)|checking|"
                     r"asking)[\W_]*", re.I | re.A)
# Where a put-off answer of two parts may be cut ('N/A - TBD', 'n/a (tbd)'): put_off()
PUT_OFF_CUT = re.compile(r"[\s,;/()\[\]\u2013\u2014-]+")
# ... and the same in other languages and as forms' placeholders ('à définir', '待定', 'Ihre Antwort', 'Short answer
# text'): read in lower case, in any script (put_off)
PUT_OFF_WORLD = re.compile(r"[\W_]*(?:\u00e0[\W_]+venir|\u00e0[\W_]+d\u00e9finir|\u00e0[\W_]+compl\u00e9ter|"
                           r"\u00e0[\W_]+confirmer|en[\W_]+cours|por[\W_]+definir|a[\W_]+definir|"
                           r"por[\W_]+confirmar|a[\W_]+confirmar|a[\W_]+completar|da[\W_]+completare|"
                           r"da[\W_]+confermare|in[\W_]+sospeso|em[\W_]+aberto|kommt[\W_]+noch|folgt|"
                           r"wird[\W_]+nachgereicht|volgt|do[\W_]+ustalenia|w[\W_]+trakcie|"
                           r"\u0431\u0443\u0434\u0435\u0442[\W_]+\u043f\u043e\u0437\u0436\u0435|"
                           r"\u0432[\W_]+\u043f\u0440\u043e\u0446\u0435\u0441\u0441\u0435|"
                           r"\u0443\u0442\u043e\u0447\u043d\u044f\u0435\u0442\u0441\u044f|\u5f85\u5b9a|"
                           r"\u672a\u5b9a|\u672a\u78ba\u5b9a|\u78ba\u8a8d\u4e2d|\u7a0d\u540e\u63d0\u4f9b|"
                           r"\ubbf8\uc815|sonra|belirsiz|t[\W_]+b[\W_]+[dac]|dto|n/d|s/o|votre[\W_]+r\u00e9ponse|"
                           r"ihre[\W_]+antwort|tu[\W_]+respuesta|la[\W_]+tua[\W_]+risposta|sua[\W_]+resposta|"
                           r"uw[\W_]+antwoord|geben[\W_]+sie[\W_]+ihre[\W_]+antwort[\W_]+ein|"
                           r"entrez[\W_]+votre[\W_]+r\u00e9ponse|escriba[\W_]+su[\W_]+respuesta|"
                           r"antwort[\W_]+eingeben|add[\W_]+text|type[\W_]+your[\W_]+response|"
                           r"enter[\W_]+(?:a[\W_]+)?value(?:[\W_]+here)?|add[\W_]+a[\W_]+description|"
                           r"write[\W_]+something|(?:long|short)[\W_]+answer[\W_]+text|your[\W_]+response|"
                           r"please[\W_]+enter|fill[\W_]+in|"
                           r"\u043c\u043e\u0439[\W_]+\u043e\u0442\u0432\u0435\u0442|"
                           r"\u0432\u0430\u0448[\W_]+\u043e\u0442\u0432\u0435\u0442|twoja[\W_]+odpowied\u017a|"
                           r"yan\u0131t\u0131n\u0131z|ditt[\W_]+svar|dit[\W_]+svar|svaret[\W_]+ditt|vastauksesi|"
                           r"odpov\u011b\u010f|va\u0161a[\W_]+odpove\u010f|v\u00e1lasza|r\u0103spunsul[\W_]+dvs|"
                           r"\u03b7[\W_]+\u03b1\u03c0\u03ac\u03bd\u03c4\u03b7\u03c3\u03ae[\W_]+\u03c3\u03b1\u03c2|"
                           r"jawaban[\W_]+anda|c\u00e2u[\W_]+tr\u1ea3[\W_]+l\u1eddi[\W_]+c\u1ee7a[\W_]+b\u1ea1n|"
                           r"\u56de\u7b54\u3092\u5165\u529b|"
                           r"\u56de\u7b54\u3092\u5165\u529b\u3057\u3066\u304f\u3060\u3055\u3044|"
                           r"\u60a8\u7684\u56de\u7b54|\u4f60\u7684\u56de\u7b54|\ub0b4[\W_]+\ub2f5\ubcc0|"
                           r"\u0625\u062c\u0627\u0628\u062a\u0643|"
                           r"\u05d4\u05ea\u05e9\u05d5\u05d1\u05d4[\W_]+\u05e9\u05dc\u05da|"
                           r"\u0906\u092a\u0915\u093e[\W_]+\u091c\u0935\u093e\u092c|"
                           r"\u0e04\u0e33\u0e15\u0e2d\u0e1a\u0e02\u0e2d\u0e07\u0e04\u0e38\u0e13|jibu[\W_]+lako|"
                           r"\u0432\u0430\u0448\u0430[\W_]+\u0432\u0456\u0434\u043f\u043e\u0432\u0456\u0434\u044c|"
                           r"\u0432\u0432\u0435\u0434\u0438\u0442\u0435[\W_]+\u043e\u0442\u0432\u0435\u0442|"
                           r"wpisz[\W_]+odpowied\u017a|voer[\W_]+uw[\W_]+antwoord[\W_]+in|"
                           r"inserisci[\W_]+la[\W_]+risposta|insira[\W_]+sua[\W_]+resposta|"
                           r"skriv[\W_]+ditt[\W_]+svar|antwort[\W_]+hier[\W_]+eingeben|escribe[\W_]+aqu\u00ed|"
                           r"votre[\W_]+texte[\W_]+ici|"
                           r"(?:opci\u00f3n|\u0432\u0430\u0440\u0438\u0430\u043d\u0442|opcja|se\u00e7enek|opzione|op\u00e7\u00e3o|optie|\u30aa\u30d7\u30b7\u30e7\u30f3|\u9009\u9879|\uc635\uc158)(?:[\W_]+)?[0-9]+|"
                           r"pregunta[\W_]+sin[\W_]+t\u00edtulo|frage[\W_]+ohne[\W_]+titel|"
                           r"question[\W_]+sans[\W_]+titre|"
                           r"\u0432\u043e\u043f\u0440\u043e\u0441[\W_]+\u0431\u0435\u0437[\W_]+\u0437\u0430\u0433\u043e\u043b\u043e\u0432\u043a\u0430|"
                           r"formulario[\W_]+sin[\W_]+t\u00edtulo|introduzca[\W_]+su[\W_]+respuesta|"
                           r"texto[\W_]+de[\W_]+respuesta[\W_]+larga|langantwort[\W_]+text|wie[\W_]+oben|"
                           r"\u00eddem|\u0441\u043c[\W_]+\u0432\u044b\u0448\u0435|\u0437\u043d\u0430\u0447|"
                           r"\u043d/\u0434|niet[\W_]+beschikbaar|\u0441\u0441\u044b\u043b\u043a\u0430|"
                           r"\u0434\u0435\u043b/0|#[^\W\d_]{1,12}(?:/[^\W\d_]{1,4})?[!?]?(?!#)|"
                           r"(?:err|error|fehler|erreur|errore|erro|fout|b\u0142\u0105d|hata|virhe|chyba|hiba|fel|feil|\u03c3\u03c6\u03ac\u03bb\u03bc\u03b1|\u043e\u0448\u0438\u0431\u043a\u0430|\u30a8\u30e9\u30fc|\u9519\u8bef|\uc624\ub958):[0-9]{3}|"
                           r"cargando|chargement|chargement[\W_]+en[\W_]+cours|wird[\W_]+geladen|l\u00e4dt|"
                           r"\u0437\u0430\u0433\u0440\u0443\u0437\u043a\u0430|\u8aad\u307f\u8fbc\u307f\u4e2d|"
                           r"caricamento|carregando|laden|\u0142adowanie|y\u00fckleniyor|"
                           r"na\u010d\u00edt\u00e1n\u00ed|\u52a0\u8f7d\u4e2d|\ub85c\ub529[\W_]+\uc911|"
                           r"bet\u00f6lt\u00e9s|\u03c6\u03cc\u03c1\u03c4\u03c9\u03c3\u03b7|laddar|indl\u00e6ser|"
                           r"laster|\(leer\)|\(vide\)|\(vac\u00edo\)|\(\u043f\u0443\u0441\u0442\u043e\)|"
                           r"\(\u7a7a\u767d\)|\(vuoto\)|\(em[\W_]+branco\)|\(leeg\)|\(puste\)|\(bo\u015f\)|"
                           r"\(tyhj\u00e4\)|\(tom\)|\(pr\u00e1zdn\u00e9\)|\(\u00fcres\)|"
                           r"\(\u03ba\u03b5\u03bd\u03cc\)|\(\u7a7a\)|\(\ube44\uc5b4[\W_]+\uc788\uc74c\)|"
                           r"not[\W_]+applicable|nicht[\W_]+zutreffend|nicht[\W_]+anwendbar|sans[\W_]+objet|"
                           r"non[\W_]+applicable|no[\W_]+aplica|no[\W_]+aplicable|n\u00e3o[\W_]+se[\W_]+aplica|"
                           r"n\u00e3o[\W_]+aplic\u00e1vel|non[\W_]+applicabile|nie[\W_]+dotyczy|"
                           r"niet[\W_]+van[\W_]+toepassing|ei[\W_]+koske|ei[\W_]+sovellu|ikke[\W_]+relevant|"
                           r"ikke[\W_]+aktuelt|inte[\W_]+till\u00e4mplig|ej[\W_]+till\u00e4mpligt|"
                           r"nem[\W_]+alkalmazhat\u00f3|nelze[\W_]+pou\u017e\u00edt|\u043d/\u043f|"
                           r"\u043d\u0435[\W_]+\u043f\u0440\u0438\u043c\u0435\u043d\u0438\u043c\u043e|"
                           r"\u043d\u0435[\W_]+\u043f\u0440\u0438\u043c\u0435\u043d\u044f\u0435\u0442\u0441\u044f|"
                           r"\u9069\u7528\u5916|\u8a72\u5f53\u306a\u3057|\u4e0d\u9002\u7528|\u4e0d\u9069\u7528|"
                           r"\ud574\ub2f9[\W_]+\uc5c6\uc74c|uygulanamaz|"
                           r"\u03b4\u03b5\u03bd[\W_]+\u03b5\u03c6\u03b1\u03c1\u03bc\u03cc\u03b6\u03b5\u03c4\u03b1\u03b9|"
                           r"\u063a\u064a\u0631[\W_]+\u0642\u0627\u0628\u0644[\W_]+\u0644\u0644\u062a\u0637\u0628\u064a\u0642|"
                           r"\u05dc\u05d0[\W_]+\u05e8\u05dc\u05d5\u05d5\u05e0\u05d8\u05d9|"
                           r"\u0932\u093e\u0917\u0942[\W_]+\u0928\u0939\u0940\u0902|"
                           r"this[\W_]+message[\W_]+(?:was|has[\W_]+been)[\W_]+deleted|"
                           r"diese[\W_]+nachricht[\W_]+wurde[\W_]+gel\u00f6scht|"
                           r"ce[\W_]+message[\W_]+a[\W_]+\u00e9t\u00e9[\W_]+supprim\u00e9|"
                           r"este[\W_]+mensaje[\W_]+fue[\W_]+eliminado|"
                           r"se[\W_]+elimin\u00f3[\W_]+este[\W_]+mensaje|\(edited\)|\(bearbeitet\)|"
                           r"\(modifi\u00e9\)|copied|copied[\W_]+to[\W_]+clipboard|show[\W_]+more|see[\W_]+more|"
                           r"read[\W_]+more|mehr[\W_]+anzeigen|afficher[\W_]+plus|ver[\W_]+m\u00e1s|"
                           r"<image[0-9]{3}\.(?:png|jpe?g|gif)>|\u3042\u306a\u305f\u306e\u56de\u7b54|"
                           r"hier[\W_]+eingeben|click[\W_]+to[\W_]+edit|no[\W_]+answer|sin[\W_]+respuesta|"
                           r"sans[\W_]+r\u00e9ponse|pas[\W_]+de[\W_]+r\u00e9ponse|keine[\W_]+antwort|"
                           r"nessuna[\W_]+risposta|sem[\W_]+resposta|geen[\W_]+antwoord|brak[\W_]+odpowiedzi|"
                           r"\u672a\u56de\u7b54|\u65e0\u56de\u7b54|"
                           r"\u0431\u0435\u0437[\W_]+\u043e\u0442\u0432\u0435\u0442\u0430|"
                           r"\uc751\ub2f5[\W_]+\uc5c6\uc74c|not[\W_]+set|unassigned|no[\W_]+value|n\.n\.|nn|"
                           r"antwort|r\u00e9ponse|respuesta|risposta|resposta|antwoord|comment|comments|"
                           r"unnamed[\W_]+[0-9]+|%s|\{[0-9]\}|\$[0-9]|escribe[\W_]+tu[\W_]+respuesta|"
                           r"\uadc0\ud558\uc758[\W_]+\ub2f5\ubcc0|jouw[\W_]+antwoord|\u540c\u4e0a|detto|"
                           r"vide[\W_]+supra|object[\W_]+object(?:[\W_]+object[\W_]+object)*|"
                           r"function[\W_]+native[\W_]+code|system[\W_]+comobject|"
                           r"microsoft[\W_]+office[\W_]+interop[\W_]+excel[\W_]+range|dbnull|"
                           r"series[\W_]+dtype[\W_]+object|empty[\W_]+dataframe|invalid[\W_]+datetime|"
                           r"nan[\W_]+nan[\W_]+nan|undefined[\W_]+undefined[\W_]+undefined|none[\W_]+none|"
                           r"b\x27[^\x27]*\x27|character[\W_]+0|translation[\W_]+missing.*|"
                           r"ljava[\W_]+lang[\W_]+string[\W_]+[0-9a-f]+|timestamp[\W_]+\x27[^\x27]*\x27|"
                           r"datetime[\W_]+date[\W_]+[0-9]+(?:,\s?[0-9]+)*|da[\W_]+defin\u00ee|"
                           r"k\u00fctt[\W_]+noch|por[\W_]+defenir|"
                           r"\u0928\u0902\u0924\u0930[\W_]+\u0915\u0933\u0935\u0942|"
                           r"\u10d3\u10d0\u10e1\u10d0\u10d6\u10e3\u10e1\u10e2\u10d4\u10d1\u10d4\u10da\u10d8\u10d0|"
                           r"\u0720\u0710[\W_]+\u071d\u0715\u0725\u071d\u0722|will[\W_]+revert|"
                           r"see[\W_]+screenshot|as[\W_]+per[\W_]+(?:e-?mail|call|meeting)|wie[\W_]+besprochen|"
                           r"vedi[\W_]+allegato|see[\W_]+column[\W_]+[a-z]|testing[\W_]+123|\u30c4)[\W_]*")
PUT_OFF_CHARS = 100
# A line break in a cell (Excel's Alt+Enter) and what a refusal says of it (H15-8)
LINE_BREAK = re.compile("[\n\r]")
LINE_BREAK_MESSAGE = "an answer is one line; put a line break as '; '"
# What a refusal shows of a routing token that looks like a password, instead of the token (H15-8)
PASSWORD_LIKE = "a token that looks like a password"
# LaTeX spaces in math, which render as a space: '$not\ needed$'
MATH_SPACE = re.compile(r"\\[ ,;:!]")
# A single '~' (not part of '~~'): a pair of them strikes text through on GitHub (see struck)
TILDE = re.compile(r"(?<!~)~(?!~)")
# 'Not applicable' as spreadsheets write it, with no reason: 'n/a', '#N/A', 'na', 'N.A.'
NOT_APPLICABLE = re.compile(r"#?n/a|n\.?a\.?", re.I)
# An HTML tag, comment or processing instruction; and an autolink, which is not one: '<https://...>'
HTML_TAG = re.compile(r"<(?:[A-Za-z][\w-]*(?:\s|/?>)|/[A-Za-z]|!--|\?)")
AUTOLINK = re.compile(r"<[a-z][a-z0-9+.-]*:[^\s<>]*>", re.I)
FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66", "\ufe62", "\ufe63")
# An answer may start with a phone number in international form ('+44 20 7946 0958 (NOC)', '+1 (555) 010-0199', or
# '＋86 …' as CJK input methods type it), then
# its end or a word, if it holds nothing else a formula needs ('+1-555-0100+cmd|...', '+44 20 7946 0123 =1+1')
PHONE_START = re.compile(r"[+\uff0b\ufe62][0-9]{1,3}(?:[ .-]?\(?[0-9]{1,5}\)?){2,6}(?=$|[,;]?\s+[^\W\d_]|\s+\()(?![^=|!*^&]*[=|!*^&])")
SAFE_AUTOLINK = re.compile(r"<(?:https?|mailto|ftp|sftp|urn|doi|tel):", re.I)   # a link's scheme an answer may use
# Letters of other scripts, and small capitals, that look like Latin ones (and that NFKC leaves as they are), under the
# Latin letter they look like, in its case: Cyrillic 'а' and Greek 'α' read 'a', Cyrillic 'А' and Lisu 'ꓮ' read 'A'.
# The secret scan reads them folded (a key typed with Cyrillic 'а', 'е' and 'с' is a key), and so do a CSV's header
# names (header_name in checklist.py); tools/form.html receives the same table. With 'ı' and 'İ' folded (and 'ſ' and
# 'K', which NFKC folds), no letter is left that Python's IGNORECASE and JavaScript's /iu match differently
LOOKALIKE_LETTERS = {
    "a": "\u0430\u0251\u03b1", "A": "\u0410\u0391\ua4ee", "B": "\u0412\u0392\ua4d0", "c": "\u0441\u03f2",
    "C": "\u0421\u03f9\ua4da", "d": "\u0501\u1d05", "D": "\ua4d3", "e": "\u0435\u0454\u03b5\u1d07",
    "E": "\u0415\u0395\ua4f0", "h": "\u04bb", "H": "\u041d\u0397\ua4e7", "i": "\u0456\u03b9\u0131\u04cf\u026a",
    "I": "\u0130\u0406\u0399\u04c0\ua4f2", "j": "\u0458", "J": "\u0408\ua4d9", "K": "\u041a\u039a\ua4d7",
    "M": "\u041c\u039c\ua4df", "n": "\u0578\u0274\u03bd", "N": "\u039d\ua4e0", "o": "\u043e\u03bf\u0585",
    "O": "\u041e\u039f\ua4f3", "p": "\u0440\u03c1", "P": "\u0420\u03a1\ua4d1", "q": "\u051b", "r": "\u0433\u0280",
    "R": "\ua4e3", "s": "\u0455\ua731", "S": "\u0405\ua4e2", "T": "\u0422\u03a4\ua4d4", "w": "\u051d\u1d21\u03c9",
    "W": "\u051c\ua4ea", "x": "\u0445", "X": "\u0425\u03a7\ua4eb", "y": "\u0443", "Y": "\u04ae\u03a5\ua4ec",
    "Z": "\u0396\ua4dc"}
# Digits of other scripts, which NFKC leaves as they are ('\u0664\u0668\u0662\u0666' reads '4826'): each run of ten
# starts at its zero (DIGIT_ZEROS, as Unicode 14 has them); read as ASCII digits, by the scan and the page alike
DIGIT_ZEROS = (0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50,
               0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40,
               0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0x104a0, 0x10d30, 0x11066, 0x110f0,
               0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50,
               0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1e140, 0x1e2f0, 0x1e950)
# ... and dingbats' circled digits one to nine, which NFKC leaves too ('\u2783\u2783\u2786\u2780' reads '4471')
DINGBAT_ONES = (0x2776, 0x2780, 0x278a)
FOLDED = {**LOOKALIKE_LETTERS, **{str(d): "".join(chr(zero + d) for zero in DIGIT_ZEROS) +
                                  "".join(chr(one + d - 1) for one in DINGBAT_ONES if d) for d in range(10)},
          "-": "\u2010\u2011"}                     # hyphens read as '-' ('Pass\u2011word')
# Digits written one by one as Chinese numerals, four or more in a row ('四七零八', '壹贰柒伍'; not a number
# written with 十, 百 or 千): read as ASCII digits (CHINESE_DIGITS, CHINESE_DIGIT_VALUES)
CHINESE_DIGIT_VALUES = str.maketrans({c: d for d, cs in {"0": "\u96f6\u3007", "1": "\u4e00\u58f9", "2": "\u4e8c\u8d30\u8cb3", "3": "\u4e09\u53c1\u53c3", "4": "\u56db\u8086", "5": "\u4e94\u4f0d", "6": "\u516d\u9646\u9678", "7": "\u4e03\u67d2", "8": "\u516b\u634c", "9": "\u4e5d\u7396"}.items() for c in cs})
CHINESE_DIGITS = re.compile("(?<![\u96f6\u3007\u4e00\u58f9\u4e8c\u8d30\u8cb3\u4e09\u53c1\u53c3\u56db\u8086\u4e94\u4f0d\u516d\u9646\u9678\u4e03\u67d2\u516b\u634c\u4e5d\u7396\u5341\u767e\u5343\u4e07\u842c\u4ebf\u5104\u62fe\u4f70\u4edf\u4e24\u5169])[\u96f6\u3007\u4e00\u58f9\u4e8c\u8d30\u8cb3\u4e09\u53c1\u53c3\u56db\u8086\u4e94\u4f0d\u516d\u9646\u9678\u4e03\u67d2\u516b\u634c\u4e5d\u7396]{4,}(?![\u96f6\u3007\u4e00\u58f9\u4e8c\u8d30\u8cb3\u4e09\u53c1\u53c3\u56db\u8086\u4e94\u4f0d\u516d\u9646\u9678\u4e03\u67d2\u516b\u634c\u4e5d\u7396\u5341\u767e\u5343\u4e07\u842c\u4ebf\u5104\u62fe\u4f70\u4edf\u4e24\u5169])")
LOOKALIKES = str.maketrans({c: plain for plain, others in FOLDED.items() for c in others})
# Names of where a secret is kept, which hold no secret: an AWS resource's ARN ('arn:aws:secretsmanager:eu-west-1:
# 123456789012:secret:lab/omc-AbCdEf'), a password manager's manual page ('pass(1)'), and a town's state and ZIP code
# ('Koror, PW 96940'), which hold no secret; left out before the scan
POINTER_NAMES = re.compile(r"(?<![A-Za-z0-9_:-])arn:aws[A-Za-z0-9-]*:[A-Za-z0-9-]+:[A-Za-z0-9-]*:[0-9]{0,12}:[A-Za-z0-9_/.+@-]+"
                           r"(?::[A-Za-z0-9_/.+@-]+)?|"   # to a ',' or ';': 'arn:…:user/ops,password=X' is judged after it
                           r"[A-Z][a-z]+,\s[A-Z]{2}\s[0-9]{5}(?:-[0-9]{4})?(?![\w-])|"
                           r"(?<![A-Za-z0-9_.-])(?:pass|gopass|gpg2?|sops|age|secret-tool|keyring|openssl)\([1-8]\)")
# What marks a line of the checklist's own items as worth judging in full (written_secret)
ITEM_MARKUP = re.compile(r'<a id="[^"]*"></a>|\]\(#[^)\s]*\)')     # '<a id="sec-8"></a>', '[IOP-7](#iop-7)'


def lowered(pattern):
    """A pattern that finds in a text in lower case what `pattern` (with IGNORECASE) finds in the text, several times
    faster: its letters in lower case ('\\u041f' read as 'П' first), its escapes and group names as they were, compiled
    without IGNORECASE."""
    def one(m):
        piece = m.group()
        if piece.startswith("\\u"):
            char = chr(int(piece[2:], 16))
            return char.lower() if char.isalpha() and len(char.lower()) == 1 else piece
        return piece if piece.startswith(("\\", "(?P")) or len(piece.lower()) != 1 else piece.lower()
    return re.compile(re.sub(r"\(\?P[<=]|\\u[0-9a-fA-F]{4}|\\.|.", one, pattern.pattern, flags=re.S),
                      pattern.flags & ~re.I)


CREDENTIAL_LOWER = lowered(CREDENTIAL_WORD)
WRITTEN_CUES = (re.compile(r"\d"), lowered(BOUND_NAME), CREDENTIAL_LOWER, lowered(SIM_WORD))   # in lower case


@functools.lru_cache(maxsize=1 << 12)
def prose_secret(text):
    """secret_in() for a line of the checklist's prose outside what the views copy from items (its context, tables and
    references, where a hand edit may yet put a code: 'Lab door code is 7391.'): judged as an answer is only where a
    password's, code's or key's name, or a door's, lock's or alarm's, stands (PROSE_CUES), as its dates and standards'
    numbers are no values bound to a name; elsewhere only for key material and tokens shaped like a password."""
    text = ITEM_MARKUP.sub(" ", text)
    seen = scanned(text).lower()
    return secret_in(text, near=any(cue.search(seen) for cue in PROSE_CUES))


def credential_word(text):
    """CREDENTIAL_WORD's first match in a text, or None: looked for in lower case first (CREDENTIAL_LOWER), which is
    faster where there is none, as in most texts."""
    return CREDENTIAL_WORD.search(text) if CREDENTIAL_LOWER.search(text.lower()) else None


def shown(value, limit=60):
    """A value from outside, safe to print: invisible and control characters escaped, cut short
    (a file path, with limit None, is never cut)."""
    out = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in INVISIBLE else c for c in str(value))
    return out if limit is None or len(out) <= limit else out[:limit] + "…"


def masked(token):
    """A suspected password as a message names it: its first characters (three, or a third of a shorter one: one of
    a four-digit PIN) and its length, enough to find it in one's own text, never the whole."""
    return f"'{shown(token[:min(3, len(token) // 3)])}…' ({len(token)} character{'s' if len(token) != 1 else ''})"


def as_typed(label, text):
    """A label the scan found, as the answer `text` writes it: looked for in the answer read letter by letter as the
    scan reads it (NFKC, look-alike letters folded, blank characters left out), then taken from the answer itself
    ('Пароль', not its folded 'Пapoль'; 'รหัสผ่าน' with its vowel signs), to the end of its word where it is a stem
    and its script spaces words; a whole word first ('nagios' of 'nagiosadmin / nagios' is the last); the label itself
    where it is not found so."""
    text = unicodedata.normalize("NFKC", text)
    kept = [(k, c.translate(LOOKALIKES)) for k, c in enumerate(text) if c.isascii() or c.isspace() or not blank(c)]
    folded, first = "".join(c for _, c in kept), None
    at = folded.find(label) if label else -1
    while at >= 0:
        start, end = kept[at][0], kept[at + len(label) - 1][0] + 1
        if not (end < len(text) and text[end].isalpha() or start > 0 and text[start - 1].isalpha()):
            break                                     # a whole word
        first = at if first is None else first
        at = folded.find(label, at + 1)
    at = at if at >= 0 else first
    if at is None:
        return label
    start, end = kept[at][0], kept[at + len(label) - 1][0] + 1
    whole = label[-1].isalpha() and not UNSPACED.match(label[-1])   # a stem's word ('κωδικ' of 'κωδικός')
    while end < len(text) and (whole and text[end].isalpha() or
                               not text[end].isascii() and not text[end].isspace() and blank(text[end])):
        end += 1                                      # the marks on its last letter, the rest of its word
    return text[start:end]


# The flags written with tags that Unicode recommends (England, Scotland, Wales): any other run of tags may spell
# hidden text ('door code 5829' in tags after a black flag)
FLAG_TAGS = ("gbeng", "gbsct", "gbwls")


def joins(value, k):
    """True if value[k] is a ZWNJ or ZWJ between letters, or a ZWJ between emoji; Mongolian's vowel separator
    between Mongolian letters; or a tag of a flag's tag sequence ('\U0001f3f4' + tags + cancel tag: Wales;
    FLAG_TAGS)."""
    if "\U000e0020" <= value[k] <= "\U000e007f":
        start = k
        while start > 0 and "\U000e0020" <= value[start - 1] <= "\U000e007e":
            start -= 1
        end = k
        while end < len(value) and "\U000e0020" <= value[end] <= "\U000e007e":
            end += 1
        return start > 0 and value[start - 1] == "\U0001f3f4" and end < len(value) and value[end] == "\U000e007f" \
            and "".join(chr(ord(c) - 0xE0000) for c in value[start:end]) in FLAG_TAGS
    if not 0 < k < len(value) - 1:
        return False
    if value[k] == "\u180e":
        return bool(MONGOLIAN.match(value[k - 1]) and MONGOLIAN.match(value[k + 1]))
    if value[k] not in JOINERS:
        return False
    before, after = unicodedata.category(value[k - 1]), unicodedata.category(value[k + 1])
    if before[0] in "LM" and (after[0] == "L" or after[0] == "M" and not value[k - 1].isascii()):
        # a letter, or a letter's mark such as a virama, then a letter or (Bengali 'র‍্যাক') a mark; not between two ASCII
        # letters: there they could hide data
        return not (value[k - 1].isascii() and value[k + 1].isascii())
    return value[k] == "\u200d" and after == "So" and (before in ("So", "Sk") or value[k - 1] == "\ufe0f")


def selects(value, k):
    """True if the variation selector value[k] picks a form of the character before it: an emoji's or text
    presentation (U+FE0E, U+FE0F) of a symbol or punctuation mark other than ASCII's ('\u2764\ufe0f') or of a
    keycap's digit, '#' or '*' ('1\ufe0f\u20e3'), a CJK ideograph's glyph (at most IDEOGRAPH_SELECTORS in a text:
    hidden_characters), a Myanmar letter's (U+FE00), or a Mongolian letter's."""
    before, c = value[k - 1] if k else "", value[k]
    if "\u180b" <= c <= "\u180f":
        return bool(MONGOLIAN.match(before))
    if IDEOGRAPH.match(before):
        return True
    if "\u1000" <= before <= "\u109f":
        return c == "\ufe00"
    if c not in "\ufe0e\ufe0f" or not before:
        return False
    if before.isascii():
        return before in "0123456789#*" and value[k + 1:k + 2] == "\u20e3"
    return unicodedata.category(before)[0] in "SP"


def noncharacter(c):
    """True for a Unicode noncharacter: U+FDD0 to U+FDEF, or U+FFFE or U+FFFF of any plane (never assigned)."""
    n = ord(c)
    return 0xFDD0 <= n <= 0xFDEF or n & 0xFFFE == 0xFFFE


def hidden_characters(value):
    """The invisible and control characters of a value, its noncharacters and the letters that render as nothing
    (FILLERS: 'PIN\u31641234'), sorted (joiners in their place excepted, and LRM and RLM in a text with right-to-left
    letters)."""
    if value.isprintable() and not any(c in value for c in FILLERS) and not VARIATION.search(value) and \
            not IGNORED.search(value):                # the common case, checked in C
        return []
    found = {c for k, c in enumerate(value)
             if (unicodedata.category(c) in INVISIBLE or noncharacter(c) or c in FILLERS) and not joins(value, k) or
             VARIATION.match(c) and not selects(value, k) or IGNORED.match(c)}
    ideographic = [c for k, c in enumerate(value) if k and VARIATION.match(c) and IDEOGRAPH.match(value[k - 1])]
    if len(ideographic) > IDEOGRAPH_SELECTORS:        # a name's glyph or two, not bytes spelled one per character
        found |= set(ideographic)
    if found & set(BIDI_MARKS) and right_to_left(value):
        found -= set(BIDI_MARKS)
    return sorted(found)


def right_to_left(value):
    """True if the value holds a letter of a right-to-left script (Arabic, Hebrew, ...)."""
    return any(m.group().isalpha() for m in RTL_BLOCK.finditer(value))


def entity(m):
    """True if an ENTITY match is one HTML defines: numeric, or a name of HTML5's list ('&T;' is not)."""
    name = m.group()[1:-1]
    return name.startswith("#") or name in ENTITY_NAMES


def blank(c):
    """True for a character that renders as nothing: invisible, a combining mark or a filler."""
    return unicodedata.category(c) in UNSEEN or c in FILLERS


def substance(text):
    """What a reader sees of the text: no whitespace, blank characters or empty link shells."""
    if text.isascii():                                # the blank characters of ASCII are its controls
        return LINK_SHELL.sub("", ASCII_UNSEEN.sub("", text))
    return LINK_SHELL.sub("", "".join(c for c in text if not (c.isspace() or blank(c))))


# Xhosa's and Zulu's prefixes joined to a number by a hyphen ('ngu-7315', 'u-2604'): read apart
NUMBER_PREFIX = re.compile(r"(?<![^\W_])(ngu|ngo|ngama|nge|u|ku|ka|yi)-(?=[0-9])")
# A password's name split by a hyphen ('pass-word', 'Pass-Wort'), read whole
SPLIT_NAME = re.compile(r"(?<![^\W_])(pass)-(word|wort|phrase)(?![^\W_])", re.I)


def scanned(text):
    """The text as the secret scan reads it: NFKC, with letters that look Latin read as Latin (LOOKALIKES); without
    blank characters (whitespace kept), HTML entities, Markdown emphasis and code marks, the backslashes of Markdown
    escapes, hex prefixes, a prefix's hyphen before a number (NUMBER_PREFIX) or in a password's name (SPLIT_NAME), or the LaTeX commands of math ('$\\mathtt{465b}\\mathtt{5ce8}$' reads '${465b}{5ce8}$')."""
    text = NOT_ASCII.sub(lambda m: "" if blank(m.group()) and not m.group().isspace()
                         else m.group().translate(LOOKALIKES), unicodedata.normalize("NFKC", text))
    text = MARKUP.sub("", ENTITY.sub(lambda m: "" if entity(m) else m.group(), text))
    text = CHINESE_DIGITS.sub(lambda m: m.group().translate(CHINESE_DIGIT_VALUES), text)
    text = SPLIT_NAME.sub(r"\1\2", NUMBER_PREFIX.sub(r"\1 ", HEX_PREFIX.sub("", MD_ESCAPE.sub("", text))))
    return MATH.sub(lambda m: LATEX_COMMAND.sub("", m.group()), text) if "$" in text else text


def hex_key(text):
    """True if the text holds a key in hex (see key_like), unless it has a hash's length and is labelled
    as a hash, or has a git commit's length and stands in a URL's path. A run that is a list is judged item
    by item (run_parts). Identifiers are not keys (identifiers_out). Linear: the URLs are found once, and a
    label is looked for only just before its run. Pieces of a key that words cut apart count too (pieced_key)."""
    if not HEX_RUN.search(text) and not HEX_PIECE.search(text):      # the common case, without the work below
        return False
    text = identifiers_out(text)
    paths = None                                      # [(start, end)] of the URL paths, found when first needed
    for m in HEX_RUN.finditer(text):
        for start, end, groups in run_parts(text, m):
            if not key_like(groups):
                continue
            length = sum(map(len, groups))
            if length == COMMIT_LENGTH:
                paths = paths if paths is not None else [u.span("path") for u in URL.finditer(text)]
                k = bisect.bisect_right(paths, (start, len(text))) - 1
                if k >= 0 and paths[k][0] <= start and end <= paths[k][1]:
                    continue
            if length in HASH_LENGTHS and labelled(text, start, length):
                continue
            return True
    return pieced_key(text)


def pieced_key(text):
    """True if two or more hex runs of 8 digits or more (HEX_PIECE) in a row, with words between some of them,
    join into a key's length (KEY_DIGITS) and read as a key (key_like): 'K1=465b5ce8b199b49f K2=aa5f0a2ee238a6bc'.
    Not pieces in a URL, nor pieces that share a prefix of three characters (serial numbers), short commit hashes
    after a hash label (before the first piece of the text or of the row), or a hash's length after its label.
    Pieces only punctuation parts are HEX_RUN's. Each piece has 8 digits or more, so a row of them that has 64
    at most is 8 long: linear."""
    pieces = [m.span() for m in HEX_PIECE.finditer(text)]
    if len(pieces) < 2:
        return False
    if "://" in text:                                 # the URLs stand apart, in order: one search each
        urls = [u.span() for u in URL.finditer(text)]
        pieces = [p for p in pieces if not in_span(urls, p)]
    worded = [k > 0 and bool(LETTER_OR_DIGIT.search(text, pieces[k - 1][1], pieces[k][0])) for k in range(len(pieces))]
    listed = []                                       # [True] if a hash label stands before the text's first piece
    for k in range(len(pieces)):
        total = 0
        for j in range(k, len(pieces)):
            total += pieces[j][1] - pieces[j][0]
            if total > max(KEY_DIGITS):
                break
            if j > k and total in KEY_DIGITS and any(worded[k + 1:j + 1]) and \
                    key_piece_row(text, pieces[k:j + 1], total, listed, pieces[0][0]):
                return True
    return False


def in_span(spans, span):
    """True if `span` lies inside one of `spans` (sorted, not overlapping)."""
    k = bisect.bisect_right(spans, (span[0], float("inf"))) - 1
    return k >= 0 and spans[k][0] <= span[0] and span[1] <= spans[k][1]


def key_piece_row(text, row, total, listed, first):
    """True if a row of HEX_PIECE spans that joins into `total` digits reads as a key (see pieced_key). `listed`
    caches whether a hash label stands before the text's first piece, which starts at `first`."""
    groups = [text[a:b] for a, b in row]
    if not key_like(groups) or len(commonprefix([g.lower() for g in groups])) >= 3:
        return False
    if all(SHORT_COMMIT[0] <= len(g) <= SHORT_COMMIT[1] for g in groups):
        if not listed:
            listed.append(labelled(text, first, None))
        if listed[0] or labelled(text, row[0][0], None):
            return False
    return not (total in HASH_LENGTHS and labelled(text, row[0][0], total))


def identifiers_out(text):
    """The text without the identifiers that hold long hex runs: UUIDs (uuids_out), IPv6 addresses compressed
    with '::', full ones labelled as addresses (IPV6_LABEL) or in the documentation prefix, and MAC addresses."""
    if "-" in text:
        text = uuids_out(text)
    if ":" in text:
        text = ipv6_out(IPV6_SHORT.sub(lambda m: " " if len(HEX_GROUP.findall(m.group())) <= 7 else m.group(), text))
    return MAC.sub(" ", text)


def ipv6_out(text):
    """The text without its full IPv6 addresses that are labelled (IPV6_LABEL), in the documentation prefix, or
    next in a list after one that is ('IPv6 addresses A, B and C')."""
    out, last, listed = [], 0, None                   # listed: where the last address taken out ends
    for m in IPV6.finditer(text):
        if listed is not None and IPV6_LIST_GAP.fullmatch(text, listed, m.start()) or \
                IPV6_DOCUMENTATION.match(m.group()) or \
                IPV6_LABEL.search(text[max(0, m.start() - IPV6_LABEL_REACH):m.start()]):
            out += [text[last:m.start()], " "]
            last = listed = m.end()
        else:
            listed = None
    return "".join(out) + text[last:] if out else text


def uuids_out(text):
    """The text without its valid UUIDs (version digit 1 to 8, variant digit 8, 9, a or b) and those labelled
    'uuid' or 'guid', except two that stand side by side with only spaces between: a 64-digit key in two halves."""
    found = list(UUID.finditer(text))
    paired = {m.start() for a, b in zip(found, found[1:]) if text[a.end():b.start()].isspace() for m in (a, b)}
    out, last = [], 0
    for m in found:
        uuid = m.group()
        if m.start() in paired or not (uuid[14] in "12345678" and uuid[19] in "89abAB" or
                                       UUID_LABEL.search(text[max(0, m.start() - UUID_LABEL_REACH):m.start()])):
            continue
        out += [text[last:m.start()], " "]
        last = m.end()
    return "".join(out) + text[last:] if out else text


def run_parts(text, m):
    """[(start, end, groups)] to judge of a HEX_RUN match: the whole run; or, where ',' or ';' part it into the
    items of a list, each item on its own, unless the items read as a key cut into pieces (split_key)."""
    run = m.group()
    if "," not in run and ";" not in run:
        return [(m.start(), m.end(), HEX_GROUP.findall(run))]
    items, at = [], m.start()
    for part in LIST_BREAK.split(run):
        spans = [(at + g.start(), at + g.end()) for g in HEX_GROUP.finditer(part)]
        if spans:
            items.append(spans)
        at += len(part) + 1
    if len(items) < 2 or split_key(text, items):
        return [(m.start(), m.end(), HEX_GROUP.findall(run))]
    return [(spans[0][0], spans[-1][1], [text[a:b] for a, b in spans]) for spans in items]


def split_key(text, items):
    """True if the items of a list (each [(start, end)] of its hex groups) read as one key cut into pieces: the
    same shape each (group lengths), a key's length in all (KEY_DIGITS), and no prefix of three characters or
    more that every item shares (serial numbers, area codes); a list of short commit hashes (7 to 12 digits
    each) is none if a hash label stands right before it. A group that is a piece of a word at either end
    (the 'd' of 'and') counts for nothing."""
    first, last = items[0], items[-1]
    if first[0][0] > 0 and WORD_CHARACTER.match(text, first[0][0] - 1):
        first = first[1:]
    if last[-1][1] < len(text) and WORD_CHARACTER.match(text, last[-1][1]):
        last = last[:-1]
    items = [spans for spans in [first] + items[1:-1] + [last] if spans]
    shapes = {tuple(b - a for a, b in spans) for spans in items}
    if len(shapes) != 1 or sum(next(iter(shapes))) * len(items) not in KEY_DIGITS:
        return False
    digits = ["".join(text[a:b] for a, b in spans).lower() for spans in items]
    if len(commonprefix(digits)) >= 3:
        return False
    shape = next(iter(shapes))
    return not (len(shape) == 1 and 7 <= shape[0] <= 12 and labelled(text, items[0][0][0], None))


def commonprefix(words):
    """The longest prefix that every word has."""
    first, last = min(words), max(words)
    k = 0
    while k < len(first) and first[k] == last[k]:
        k += 1
    return first[:k]


def key_like(groups):
    """True if hex groups joined into one run read as a key: 32 digits or more, and either one unbroken run
    of decimal digits, or at least 8 decimal digits and 2 letters, where a run of several groups also needs a
    group that mixes letters and digits ('5ce8'), unless every group is one or two characters. So decimal
    numbers joined by ', ' (spec numbers, dates, addresses) are no key, nor are words and numbers that only
    take turns ('1 Dec 2026, 15 Dec 2026', '(a) 2026-12-01 (b) ...')."""
    digits = "".join(groups)
    if len(digits) < 32:
        return False
    decimal = sum(1 for c in digits if c <= "9")
    if decimal == len(digits):
        return len(groups) == 1
    if decimal < 8 or len(digits) - decimal < 2:
        return False
    return len(groups) == 1 or max(map(len, groups)) <= 2 or any(not g.isdigit() and not g.isalpha() for g in groups)


def labelled(text, start, length):
    """True if a hash label ends right before text[start] (HASH_LABEL; COMMIT_LABEL for a run of `length` 40),
    or a hash word up to five words before it (FAR_LABEL, for a run of 40 or 64 digits), and no negation
    stands a few words before the label. `length` None: HASH_LABEL only."""
    window = text[max(0, start - HASH_LABEL_REACH):start]
    label = HASH_LABEL.search(window)
    if label is None and length == COMMIT_LENGTH:
        label = COMMIT_LABEL.search(window)
    if label is None and length in FAR_LENGTHS:
        label = FAR_LABEL.search(window)
        between = label.group("between") if label else ""
        if KEY_WORD.search(between) or NEGATION_WORD.search(between):
            label = None
    return label is not None and not NEGATION.search(window[max(0, label.start() - NEGATION_REACH):label.start()])


def char_class(c):
    """'u'pper, 'l'ower, 'd'igit or 'o'ther, for ASCII letters and digits."""
    return "u" if "A" <= c <= "Z" else "l" if "a" <= c <= "z" else "d" if "0" <= c <= "9" else "o"


def transitions(s):
    """How often adjacent characters change class (upper, lower, digit, other)."""
    return sum(char_class(a) != char_class(b) for a, b in zip(s, s[1:]))


def voweled(s):
    """True if every lower-case run of three letters or more has a vowel, as words do."""
    return all(re.search(r"[aeiouy]", run) for run in re.findall(r"[a-z]{3,}", s))


def entropy(s):
    """Shannon entropy of the characters of s, in bits per character."""
    return -sum(n / len(s) * math.log2(n / len(s)) for n in collections.Counter(s).values())


# India's company (CIN) and tax (GSTIN) identifiers: no encoded key
INDIAN_ID = re.compile(r"[LU][0-9]{5}[A-Z]{2}[0-9]{4}[A-Z]{3}[0-9]{6}|[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][0-9A-Z]Z[0-9A-Z]")


def base64_key(run):
    """True if a base64-alphabet run looks like an encoded key rather than a path, word or identifier."""
    if INDIAN_ID.fullmatch(run):
        return False
    core = run.rstrip("=")
    if run.endswith("=") and len(core) >= 16 and len({char_class(c) for c in core}) >= 2 and \
            not ENV_NAME.fullmatch(core):
        return True
    if len(core) < 20:
        return False
    pieces = [p for segment in core.split("/") for p in re.split(r"[-_.]", segment) if p]
    if "/" in core and all(transitions(p) <= 2 and (len(p) <= 6 or voweled(p)) for p in pieces):
        return False                                # a path
    words = [p for p in re.split(r"[-_]", core) if p]
    if re.search(r"[-_]", core) and voweled(core) and \
            all(WORDSHAPE.fullmatch(p) or ACRONYM_NUMBER.fullmatch(p) or (len(p) >= 6 and CAMEL.fullmatch(p)) or
                (len(p) <= 8 and p.isalpha()) for p in words):
        return False                                # kebab-case or snake_case words
    if CAMEL.fullmatch(core) and voweled(core):
        return False                                # camelCase words
    if identifier(core):
        return False                                # kebab-case or snake_case names ('http-default-accounts')
    parts = core.split("-")
    if len(parts) >= NAME_PARTS_MIN and all(0 < len(part) <= NAME_PART_MAX for part in parts) and \
            len({len(part) for part in parts}) > 1:
        return False                                # a name of short parts ('NR-TDD-FR1-CAT-A-NoBF'), not a
                                                    # product key's even groups ('Q7XLM-2VZ4T-N7WP3-RB6YC-1HF5G')
    return entropy(core) >= 3.0


def worded(group):
    """True if a group reads as a word: letters or digits in one shape, with a vowel in every run of three letters."""
    return bool(WORDSHAPE.fullmatch(group)) and voweled(group.lower())


def joined_groups(text):
    """The base64 and base32 that `text` writes in groups, each joined into one run (not when its last group is a
    word: 'open5gs_prod deployed', nor words of letters, two capitalised: 'Nordwind Networks GmbH'), and
    the pieces cut unevenly by spaces that together have a key's length (joined_pieces)."""
    chains = (B64_JOINS.split(m.group()) for m in B64_GROUPS.finditer(text))
    joined = ["".join(groups) for groups in chains if not worded(groups[-1]) and
              sum(bool(LOWER_WORD.fullmatch(group)) and worded(group) for group in groups) < 2 and
              not (all(group.isascii() and group.isalpha() for group in groups) and
                   sum(bool(TITLE_WORD.fullmatch(group)) for group in groups) >= 2)]
    return joined + joined_pieces(text)


def joined_pieces(text):
    """Base64 or base32 cut unevenly by runs of spaces, joined: the last two to MAX_PIECES pieces of B64_PADDED
    where together they have a padded key's length (B64_KEY_LENGTHS): 'Rltc6LGZtJ+qX wou4jimvA=='; and two to
    MAX_PIECES pieces in a row of B64_CHAIN that each mix letter cases or digits and are no words (mixed), where
    together they have an unpadded key's length (UNPADDED_KEY_LENGTHS): 'Rltc6LGZtJ+qX wou4jimvA'."""
    joined = []
    for m in B64_PADDED.finditer(text) if "=" in text else ():
        pieces = m.group().split()
        joined += [run for run in ("".join(pieces[k:]) for k in range(len(pieces) - 1)) if len(run) in B64_KEY_LENGTHS]
    for m in B64_CHAIN.finditer(text):
        chain = []
        for piece in m.group().split():
            chain = (chain + [piece])[-MAX_PIECES:] if mixed(piece) else []
            joined += [run for run in ("".join(chain[k:]) for k in range(len(chain) - 1))
                       if len(run) in UNPADDED_KEY_LENGTHS]
    return joined


def mixed(piece):
    """True if a piece of base64 or base32 mixes letter cases or digits and is not made of words: a word, path or
    kebab-case name changes between upper case, lower case and digits at most twice in each part between '-', '_',
    '.' and '/' ('Secure-development', 'SEC-10', 'configs/open5gs/amf')."""
    if WORDSHAPE.fullmatch(piece) or sum(bool(c.search(piece)) for c in CHARACTER_CLASSES) < 2:
        return False
    return not all(transitions(part) <= 2 for part in PATH_PARTS.split(piece))


def base32_key(run):
    """True if a base32 run is padded, holds a digit, or has five consonants in a row, as keys do and words do not; in
    lower case without a digit, only with fewer vowels than words have (VOWEL_SHARE: not 'betriebswirtschaftlichen')."""
    if run.endswith("=") or re.search(r"[2-7]", run):
        return True
    if not re.search(r"[b-df-hj-np-tv-xz]{5}", run.lower()):
        return False
    return not run.islower() or len(VOWEL.findall(run)) < VOWEL_SHARE * len(run)


def secret_in(text, near=True):
    """What secret material `text` seems to hold (a short description), or None: secret_found()'s kind."""
    found = secret_found(text, near)
    return found[0] if found else None


@functools.lru_cache(maxsize=1 << 12)
def written_secret(text):
    """secret_in() for a line of the checklist's own items (an item's ask or a field other than its answer), where a
    secret typed by hand would be copied by every view: judged as an answer is, without the item's anchor and link
    targets ('id="sec-8"' is no secret), but only where a value could be bound to a name (a digit, or a password's,
    code's or key's name: WRITTEN_CUES), which spares the cost of judging the rest of the prose."""
    text = ITEM_MARKUP.sub(" ", text)
    seen = scanned(text).lower()
    cued = any(cue.search(seen) for cue in WRITTEN_CUES)
    return secret_in(text) if cued else secret_in(text, near=False)


@functools.lru_cache(maxsize=1 << 14)
def secret_found(text, near=True):
    """The secret material `text` seems to hold, as secret_kind() gives it ((kind, token, label)), or None: in the
    text as scanned, and then percent-decoded ('%2B' is '+'), up to PERCENT_ROUNDS times ('%252B' is '%2B'); then,
    unless `near` is false, as for the checklist's own prose, a value given for a password, PIN, code or key
    (bound_secret), or a password or key near its name (credential_token), in any of them, as (NEAR_CREDENTIAL,
    token, word); then a token shaped like a password anywhere (password_shaped: (PASSWORD_SHAPED, token, None)). Cached,
    as the same lines are read again and again (an answer by import and then by check; the checklist by the tests)."""
    texts = list(scans(POINTER_NAMES.sub(" ", NOT_NEEDED_LEAD.sub(lambda m: " " * len(m.group()), text))))
    found = next((found for found in map(secret_kind, texts) if found is not None), None)
    if found is None and near:
        token = next((token for token in map(bound_secret, texts) if token is not None), None) or \
            next((token for token in map(credential_token, texts) if token is not None), None)
        found = (NEAR_CREDENTIAL,) + token if token else None
    if found is None:
        token = next((token for token in map(password_shaped, texts) if token), None)
        found = (PASSWORD_SHAPED, token, None) if token else None
    lone = text.strip().strip(SECRET_VALUE_EDGES)
    if found is None and near and lone and not LONE_SPACE.search(lone) and weak_password(lone):
        found = PASSWORD_SHAPED, lone, None           # 'Welcome1' as the whole answer
    return found


LONE_SPACE = re.compile(r"\s")


NOT_NEEDED_LEAD = re.compile(r"^\s*not\s+needed\s*:", re.I)     # 'not needed: we use admin/admin': no negation


def scans(text):
    """The text as scanned, then percent-decoded up to PERCENT_ROUNDS times, while that changes it; a '%NAME%'
    placeholder is not decoded ('%DB_PASSWORD%': percent_decoded)."""
    text = scanned(text)
    yield text
    for _ in range(PERCENT_ROUNDS):
        if "%" not in text:
            return
        decoded = scanned(percent_decoded(text))
        if decoded == text:
            return
        text = decoded
        yield text


def percent_decoded(text):
    """The text percent-decoded (unquote), but for its '%NAME%' placeholders (PERCENT_PLACEHOLDER)."""
    pieces = PERCENT_PLACEHOLDER.split(text)
    return "".join(piece if k % 2 else unquote(piece) for k, piece in enumerate(pieces))


LABELLED_PASSWORD = "a password or token after its label ('password:', 'token=' and the like)"
PASSWORD_SHAPED = "a token shaped like a password"
WORDS_ONLY = re.compile(r"[^\W\d_]+(?:\s+[^\W\d_]+)*")        # a credential's name a message may quote whole
NEAR_CREDENTIAL = "a password or key near its name ('password', 'PIN', 'Ki', 'пароль' and the like)"
SIM_CODE_KIND = "a SIM card's access code or OTA key after its label ('ADM1:', 'PIN:', 'PUK:', 'OTA key:' and the like)"


def secret_kind(text):
    """What secret material a text already scanned holds, as (a short description, the judged token, its label), or
    None; the token and label are those of a labelled password (LABELLED_PASSWORD: judged_label()), else None."""
    kind = unlabelled_kind(text)
    if kind:
        return kind, None, None
    found = judged_label(text)
    if found:
        return (LABELLED_PASSWORD,) + found
    if sim_code(text) or JOINED_PIN.search(text):
        return SIM_CODE_KIND, None, None
    return None


# A PIN joined to its digits ('PIN5809', 'puk23918847'), sent to a modem ('AT+CPIN=5809', 'AT+CPIN="23918847","5809"',
# 'AT+CLCK="SC",0,"4821"') or to pySim ('verify_chv --pin-nr 1 4821'), a PIN and a PUK ('SIM: 1234/12345678'), or a table
# of them ('card;pin;puk / 17;4821;19283746')
JOINED_PIN = re.compile(r"(?<![^\W_])(?:(?:pin|puk)[0-9]{4,9}(?![^\W_]|[.,/-][0-9])|at\+cpin2?\s*=\s*\"?[0-9]{4,8}(?![0-9])|"
                        r"sims?\s*:?\s*[0-9]{4,8}\s*/\s*[0-9]{8}(?![0-9])|"
                        r"(?:verify|unblock|change|enable|disable)_chv(?:\s+--pin-nr\s+[0-9])?\s+[0-9]{4,16}|"
                        r"at\+clck\s*=\s*\"?sc\"?\s*,\s*[0-2]\s*,\s*\"?[0-9]{4,8}(?![0-9])|"
                        r"pin[12]?[;,|\t]puk[12]?(?![^\W_])[^\n]{0,40}?(?<![0-9])[0-9]{4,8}[;,|\t][0-9]{8}(?![0-9]))", re.I)


# Keys pressed in turn ('5-1-9-4'), a number and then a key ('6157 then OFF'), and a list of recovery codes
# ('3308-6612, 9021-4457', or three or more as '5521 8830'): a code's digits, whatever words name them, in any language
# (not a list of years: '2024-2025, 2025-2026')
KEYPAD_RUN = re.compile(r"(?<![0-9.,/-])[0-9](?:-[0-9]){3,7}(?![0-9/%]|[.,][0-9]|-[0-9])")
DIAL_RUN = re.compile(r"(?<![\w-])(?:L\s?[0-9]{1,2}[\s,/-]+R|R\s?[0-9]{1,2}[\s,/-]+L)\s?[0-9]{1,2}[\s,/-]+[LR]\s?[0-9]{1,2}(?![\w])")
DIAL_KIND = "a dial lock's combination (turns left and right, as L12 R34 L56)"
KEY_AFTER = re.compile(r"(?<![\w.,/:-])(?P<number>[0-9]{4,8}|[0-9](?: [0-9]){3,7})(?![\w/-]|[.,][0-9])(?:[\s,]+[^\s,;.]+){0,4}?[\s,]+"
                       r"(?:OFF|ENTER|OK|DISARM|UNSET|CLEAR|ESC)(?![^\W_])")
KEY_NAMED_AFTER = re.compile(r"(?<![\w.,/:-])(?P<number>[0-9]{4,8})(?![\w/-]|[.,][0-9])(?:[\s,]+[^\s,;.]+){0,4}?[\s,]+"
                             r"(?:tick|hash|pound|star|enter|ok|#|\*|green|red|yellow|blue|black|white|grey|gray)[\s-]+"
                             r"(?:key|button)(?![^\W_])", re.I)   # '4821 then the tick key'
HASH_TOKEN_AFTER = re.compile(r"(?<![\w.,/:#-])(?P<number>[0-9]{4,8})(?![\w/-]|[.,][0-9])(?:[\s,(]+[^\s,;.#]+){1,4}?[\s,(]+#"
                              r"(?:\s+[^\W\d_]+)?\s*\)?\s*[.!]?\s*$")
KEYPAD_AFTER = re.compile(r"(?<![\w.,/:-])(?P<number>[0-9]{4,8})(?![\w/-]|[.,][0-9])(?:\s+\S+){0,3}?\s+(?:key\s?pad|tastier\w*|"
                          r"teclado|clavier|tastatur\w*|pin\s?pad)(?![^\W_])", re.I)
TO_DISARM = re.compile(r"(?<![\w.,/:-])(?P<number>[0-9]{4,8})\s+to\s+(?:disarm|unset|unlock|open(?!\s+(?:an?|the|new|tickets?|"
                       r"cases?|incidents?|requests?|calls?)(?![^\W_])))(?![^\W_])", re.I)   # '8020 to disarm', not '4417 to open a ticket'
HASH_AFTER = re.compile(r"(?<![\w#*/.,:-])(?<![0-9]\s)(?P<number>[0-9]{4,8})#(?![\w#*])")     # 'Comms room 4817#'
CODE_LIST = re.compile(r"(?<![\w+-])(?:[0-9]{4}-[0-9]{4}(?:-[0-9]{4})?(?:(?:\s*[,;\u060c\u3001\uff0c]\s*|\s+(?:[^\W\d_]{1,5}(?:\s+[^\W\d_]{1,5})?\s+)?)"
                       r"[0-9]{4}-[0-9]{4}(?:-[0-9]{4})?)+|"
                       r"[0-9]{4} [0-9]{4}(?:\s*[,;\u060c\u3001\uff0c]\s*[0-9]{4} [0-9]{4}){2,}|[0-9]{4}(?:-[0-9]{4}){3})(?![\w-])")
BACKUP_RUN = re.compile(r"(?<![^\W_])(?:(?:backup|recovery|rescue|scratch|mfa|2fa|otp)(?:\s+codes?)?\s*:?\s*(?:[0-9]{4,8}"
                        r"(?:[\s,]+[0-9]{4,8}){2,}|(?!(?:19|20)[0-9]{2}-(?:19|20)[0-9]{2}(?![0-9]))[0-9]{4,6}-[0-9]{4,6}"
                        r"(?:,?\s+[0-9]{4,6}-[0-9]{4,6})+)|[^\W\d_]*(?:recup|recov|r\u00e9cup|wiederherstell)[^\W\d_]*[^0-9\n]{0,30}?"
                        r"[0-9]{4,8}(?:[\s,]+[0-9]{4,8}){3,}|(?:backup|recovery|rescue|scratch|bypass|unlock)(?:\s+(?:codes?|keys?))?"
                        r"\s*:?\s*(?=[a-z0-9-]*[a-z])(?=[a-z0-9-]*[0-9])[a-z0-9]{4}(?:(?:-|,\s*)[a-z0-9]{4}){3,})(?![\w.-])", re.I)
# ('backup 4471 2290 6675 1042 8812', 'recovery: 1a2b-3c4d-5e6f-7g8h')
LIST_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
# ... or three groups or more of capitals and digits, each with both ('2KFW-8TQA, 5NZC-61RU, H7MX-30PD'), under any name
MIXED_GROUPS = re.compile(r"(?<![\w-])[A-Z0-9]{4}(?:-[A-Z0-9]{4}){1,3}(?![\w-])")
# ... unless a document's numbering names the digits ('clause 6-1-2-3')
NUMBERING_BEFORE = re.compile(r"(?<![^\W_])(?:clause|section|sect?\.|\u00a7|annex|appendix|table|figure|fig\.|chapter|part|"
                              r"article|art\.|step|rule|level|tier|grade)\s*$", re.I)
NUMBERING_REACH = 16
# A passphrase of words and a number joined by '-' or '_' (two words of four letters or more, or of eight letters
# together, or a community's 'rw' or 'ro') within a few words after a PSK's, community's, Wi-Fi's or key's name,
# whatever those words ('IPsec PSK em sepik-wewak-2026', 'SNMP community nye lome_rw_2024', 'PSK en nam-lolwe-58'); not
# right after a place's, pointer's or account's name nor after an SSID ('item ipsec-site-3'), nor when a piece names a
# key, a site or a lab ('kid-ng-2025-11')
PASSPHRASE_NAME = re.compile(r"(?<![^\W\d_])(?:psk|psksecret|pre-?shared|precompartid\w*|secret|\u067e\u0627\u0633 \u0648\u0631\u0688|ciave|ciav|chabe|chave|chiave|clau|"
                             r"\u10d2\u10d0\u10e1\u10d0\u10e6\u10d4\u10d1\u10d8|\u0729\u0720\u071d\u0715\u0710|authenticate[sd]?\s+with|community|komunum\w*|comunautat|cuminanza|comunidad\w*|komunidad\w*|comunit\w*|komunit\w*|kemeneth|passphrase|wi-?fi|wpa[23]?|password|pass|key)"
                         r"(?![^\W\d_])(?!\s*(?:ids?|identifiers?|names?|labels?|alias)(?![^\W\d_]))", re.I)
CAMEL_PASSPHRASE_NAME = re.compile(r"(?<=[a-z])(?:Password|Passphrase|Secret|Key|Psk|PSK)(?![a-z])")   # 'authPassword'
# Vowel signs and other marks of Indic scripts, and Latin's combining accents: part of a word, though not \w to Python's re
WORD_MARKS = "\u0300-\u036f\u0900-\u0963\u0971-\u097f\u0981-\u09e3\u0a01-\u0a63\u0a81-\u0ae3\u0b01-\u0b63\u0b82-\u0bcd\u0c00-\u0c63\u0c80-\u0ce3\u0d00-\u0d63\u0d81-\u0ddf"
# ... or numbers of five digits or more after a word holding 'code' in any language, a bypass's or a break-glass's ('Kódigus
# di rekuperason: 19374 50862 73310 42591', 'Duo bypass codes for break-glass: 884213907, 551920344'): three or more, or
# two of eight digits or more, no two with the same first two digits (not a series: postcodes, alarms' IDs), and not
# where a kind of code is named (CODE_KIND: 'error codes', 'postcodes')
CODES_LISTED = re.compile(r"(?<![^\W_])(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])*(?:[ck\u043a][o\u00f3\u043e]{1,2}[d\u0434]|\u0643\u0648\u062f|\u0c95\u0ccb\u0ca1|\u06a9\u0648\u062f|\u12ae\u12f5|\u12ae\u12f3|\u12ae\u12f6|"
                          r"\u30b3\u30fc\u30c9|\u6062\u5fa9\u78bc|\u6062\u590d\u7801|\u5099\u7528\u78bc|\u5907\u7528\u7801|"
                          r"bypass|break-?glass)(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])*[^0-9\n]{0,60}?(?P<list>[0-9]{5,10}(?:[\s,;\u060c\u3001]+"
                          r"[0-9]{5,10})+)(?![\w.-])", re.I)
JOINED_PHRASE = re.compile(r"(?<![\w/.@:-])['\"(]?(?P<phrase>(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])+(?:[-_](?:[^\W_]|(?![^\W_])[" + WORD_MARKS +
                           r"])+){2,})['\")]?(?![\w/.@-])", re.I)
LETTER_PIECE = re.compile(r"[^\W\d_](?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + "])*")       # a word, its vowel signs in it ('सोमखर')
PHRASE_CONTEXT = re.compile(r"(?<![A-Za-z])(?:ipsec|ike(?:v[12])?|isakmp|strongswan|libreswan|swanctl|wi-?fi|wlan|wpa[23]?|ssid|snmp|v2c|"
                            r"\u0648\u0627\u06cc\u0641\u0627\u06cc|\u0648\u0627\u0626\u06cc \u0641\u0627\u0626\u06cc|\u0935\u093e\u0908-?\u092b\u093e\u0908|\u0648\u0627\u064a \u0641\u0627\u064a|\u0648\u064a\u0641\u064a|\uc640\uc774\ud30c\uc774)(?![A-Za-z])", re.I)
PSK_NAME = re.compile(r"psk|pre-?shared|precompartid|passphrase|\u0627\u0644\u0645\u0641\u062a\u0627\u062d \u0627\u0644\u0645\u0634\u062a\u0631\u0643|\u067e\u0627\u0633 \u0648\u0631\u0688", re.I)   # 7 letters in two words suffice
COMMUNITY = re.compile(r"community|communaut|\u0643\u0648\u0645\u064a\u0648\u0646\u064a\u062a\u064a|\u0643\u0645\u064a\u0648\u0646\u062a\u064a|\u56e2\u4f53\u540d|\u5718\u9ad4\u540d|komunum|comunautat|cuminanza|comunidad|komunidad|comunit|komunit|kemeneth", re.I)
CJK_LATIN = re.compile(r"(?<=[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])(?=[A-Za-z0-9])|(?<=[A-Za-z0-9])(?=[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af])")   # where Latin meets CJK
PHRASE_CLAUSE_END = re.compile(r"[.;!?\n]\s|[\u3002\u0964\u1362\u1364]")
PHRASE_REACH, PHRASE_WORDS_BETWEEN, PHRASE_LETTERS = 48, 5, 7
PHRASE_PLACES = {"ssid", "network", "vlan", "host", "hostname", "server", "site", "room", "named", "called", "bucket",
                 "repo", "repository", "branch", "entry", "item", "page", "wiki", "runbook", "job", "ticket", "folder",
                 "collection", "path", "file", "profile", "realm", "domain", "account", "user", "username", "login",
                 "model", "controller", "labelled", "labeled", "region", "zone"}
HOST_BEFORE = {"to", "from", "via", "by", "towards", "into", "poller", "collector", "per", "see"}   # 'traps to nms-main-12'
# A value of lower-case words joined by '-' or '_', alone after ':' at a clause's end, in a text naming SNMP, or naming
# Wi-Fi, IPsec or a PSK and a password in any language ('SNMP community pe sa e DU-ura: lolo-phabaj', 'E parola e
# Wi-Fi-aki vaš e gostura: kalo-grast-baro'), whatever the words before ':' (colon_phrase); not a setting's words
# (COLON_SETTINGS: 'read-only', 'out-of-band', 'to-be-confirmed') nor after a place's name ('SSID: lab-guest')
COLON_PHRASE = re.compile(r"[:=]\s*['\"\u201c\u00ab]?(?P<phrase>(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])+(?:[-_](?:[^\W\d_]|"
                          r"(?![^\W\d_])[" + WORD_MARKS + r"])+)+(?:[-_][0-9]{1,4})?)['\"\u201d\u00bb]?(?=\s*(?:[.;,!?)]|$))")
JOINED_WORDS = re.compile(r"(?<![\w/.@:-])['\"\u201c\u00ab]?(?P<phrase>(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])+(?:[-_](?:[^\W\d_]|"
                          r"(?![^\W\d_])[" + WORD_MARKS + r"])+)+(?:[-_][0-9]{1,4})?)(?![\w/.@-])")
COLON_LETTERS = 8
SET_PHRASE = re.compile(r"(?<![^\W_])(?P<verb>set|reset|changed|rotated)\s+(?:(?:it|them)\s+)?to\s+"
                        r"(?P<value>[a-z][a-z0-9]*(?:[-_][a-z0-9]+){1,4})(?![\w/.@-])", re.I)   # set_phrase
COLON_SETTINGS = frozenset("""
a an the to be by of in on at as or and not no per end out only read write bound band north south east west party third
source open default vendor managed hosted premises based level wide enabled disabled trap traps inform get set bulk walk
applicable used yet auto discovery plain text clear factor single sign well known specific none user group view access
agent manager engine remote local public private monitoring polling team see below above separately sent later tbd tbc
pending same shared common standard custom community string strings dedicated minute minutes hourly daily weekly case
web portal captive login server primary secondary backup main nms multi self point characters character rotated
rotation quarterly monthly yearly annually changed expires length long random generated unique certificate cert eap tls
radius enterprise personal guest guests staff corp iot visitor visitors wireless hotspot office pre aes gcm
sha cbc esp ike ikev tunnel
""".split())
COLON_LABELS = frozenset("name contact location view group engine mode version agent manager policy rule peer peers tunnel "
                          "tunnels proposal".split())
PHRASE_NAMING_PIECES = {"key", "psk", "hsm", "kid", "id", "vault", "entry", "site", "sites", "snmp", "ipsec", "ops",
                        "core", "lab", "prod", "dev", "test", "ap", "aps", "wlc", "sw", "rtr", "gw", "fw", "srv", "gnb",
                        "enb", "du", "cu", "ru", "amf", "upf", "smf", "vm", "node", "host", "rack", "floor", "room", "bldg",
                        "wlan", "ssid", "vlan", "edge", "gateway", "router", "switch", "peer", "link", "server"}
# A number that ends a sentence naming an alarm, after a comma and a few words ('Per deactivar l'alarm, smatgai 3029.',
# 'To switch the alarm off, press 3029'): whatever the local verb for 'press', not a number the words name (a customer's
# or a phone's: TAIL_NAMING, 'kund-nr 12345')
ALARM_NAME = re.compile(r"(?<![^\W_])[^\W\d_]*(?:alarm|larm|alamu|alaamu|signaliza|c\u0438r\u043da\u043b\u0438\u0437a\u0446|"
                        r"\u0905\u0932\u093e\u0930\u092e|\u140a\u14da\u140a\u14a5|al[a\u00e5]m[e\u0259]|a\u043bap\u043c|"
                        r"\u090f\u0932\u093e\u0930\u092e|al\u00e1rpm|\u2d30\u2d4d\u2d30\u2d54\u2d4e|\u0627\u0644\u0627\u0631\u0645|\u0625\u0646\u0630\u0627\u0631|\u0627\u0646\u0630\u0627\u0631|\u62a5\u8b66|\u8b66\u5831|\u8b66\u62a5|\u5831\u8b66|\u12a0\u120b\u122d\u121d|\u098f\u09b2\u09be\u09b0\u09ae|\u30a2\u30e9\u30fc\u30e0|\uacbd\ubcf4\uae30|\u0c85\u0cb2\u0cbe\u0cb0\u0c82)\w*", re.I)
PROSE_CUES = WRITTEN_CUES[1:] + tuple(lowered(name) for name in (CODE_WORD, GENERIC_CODE, ALARM_NAME))   # prose_secret
# ... or a number pressed or typed in Chinese ('先按4708'), not one a year's, a sum's or a count's word follows
CHINESE_UNIT = re.compile("[\u5e74\u6708\u65e5\u53f7\u865f\u5143\u4e2a\u500b\u53f0\u5957\u4eba\u5929\u6b21\u4f4d%]")       # '3000 元', a sum
CHINESE_PRESSED = re.compile("(?:\u6309|\u8f93\u5165|\u8f38\u5165|\u952e\u5165|\u9375\u5165)\\s*(?P<number>[0-9]{4,8})(?![0-9])(?!\\s*[\u5e74\u6708\u65e5\u53f7\u865f\u5143\u4e2a\u500b\u53f0\u5957\u4eba\u5929\u6b21\u4f4d%])")
# ... or a number a few words after the alarm's name and ':' or a dash ('Alarm: naciś 2580 i idź wōn'), but a number
# a word names, after a capitalised word (a model's) or before a unit
ALARM_LABEL = re.compile(r"\s*[:=\u2013\u2014-]\s*(?P<words>(?:[^\W\d_][^\s,;:]*\s+){0,3})(?P<number>[0-9]{4,8})"
                         r"(?![\w/.,-]|[.,][0-9])(?:\s+(?P<next>[^\W\d_][^\s.,;]*))?")
ALARM_TAIL = re.compile(r"[,:;]\s*(?P<words>(?:[^\W\d_][\w'\u2019-]*\s+){1,3})(?P<number>[0-9]{4,8})"
                        r"(?:\s+[^\W\d_][\w'\u2019-]*)?\s*[.!\u0964\u3002]?\s*$")
# ... or a number and one word that end it ('Alarmi qamissagukku 1964 tooruk.'), but a quantity ('3650 days') or a
# number a word names ('queue 4410': NUMBER_LABELS)
NUMBER_WORD_END = re.compile(r"(?:(?<![^\W\d_])(?P<before>[^\W\d_]+)\s+)?(?<![\w.,/-])(?P<number>[0-9]{4,8})\s+"
                             r"(?P<word>[^\W\d_][^\s.!\u0964\u3002\u1362]*)\s*[.!\u0964\u3002\u1362]?\s*$")
TAIL_UNITS = frozenset("days day hours hour minutes minute seconds second sites site events event alarms alarm entries "
                       "records rows users times years months weeks ms s m km w kw mw mhz ghz db euro eur usd dollars "
                       "sims cards units pieces devices nodes cells critical major minor warning cleared".split())
SEVERITY = re.compile(r"krit|criti|cr\u00edti|major|majeur|mayor|maggior|minor|mineur|menor|warn|avert|grave|sever|urgen|"
                      r"\u7d27\u6025|\u4e25\u91cd|\u91cd\u8981|\u6b21\u8981|\u63d0\u793a|\u8b66\u544a|\uae34\uae09|\uc2ec\uac01|"
                      r"\uc8fc\uc694|\uacbd\ubbf8|\u0634\u062f\u06cc\u062f|\u0c97\u0c82\u0cad\u0cc0\u0cb0|\u0ca4\u0cc1\u0cb0\u0ccd\u0ca4\u0cc1")   # 'critical', '紧急', '심각', 'ಗಂಭೀರ' ...
LISTED_NUMBER = re.compile(r"(?<![\w.,/-])[0-9]{4,8}(?![\w/-]|[.,][0-9])")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?;\u0964\u3002])\s+")
TAIL_NAMING = frozenset("nr no number num tel phone ext id ticket order model zone zones room customer ref case po call "
                        "dial fax \u578b\u53f7 \u578b\u865f \u7f16\u53f7 \u7de8\u865f \u53f7\u7801 \u865f\u78bc \u5de5\u5355 \u5de5\u55ae \u5206\u673a \u5206\u6a5f \u7535\u8bdd \u96fb\u8a71 \u623f\u95f4 \u623f\u9593".split())
NUMBER_LABELS = TAIL_NAMING | frozenset("queue type series version firmware vlan channel band ssid port line extension "
                                        "group".split())
KEYPAD_KIND = "a code typed on a keypad (single digits joined by '-', as 5-1-9-4)"
KEY_AFTER_KIND = "a code typed on a keypad (a number, then a key such as OFF, ENTER or #)"
CODE_LIST_KIND = "recovery or backup codes (groups of digits, as 3308-6612, 9021-4457)"


BASIC_TOKEN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/]{12,200}={0,2}(?![\w+/=-])")
USER_COLON_PASSWORD = re.compile(r"[\x21-\x39\x3b-\x7e]+:[\x20-\x7e]+")


def basic_credentials(text):
    """True if a token of the text is base64 for 'user:password' (BASIC_TOKEN, padded or not: 'YWRtaW46aHVudGVyMg')."""
    for m in BASIC_TOKEN.finditer(text):
        token = m.group().rstrip("=")
        try:
            decoded = binascii.a2b_base64(token + "=" * (-len(token) % 4)).decode("ascii")
        except (binascii.Error, ValueError):
            continue
        if USER_COLON_PASSWORD.fullmatch(decoded):
            return True
    return False


def unlabelled_kind(text):
    """What secret material a text already scanned holds without a label: a key, signed token, password in a URL or
    address, or encoded key material (a short description), or None."""
    if KEY_MARKERS.search(text):
        return "a private key or PEM block"
    if JWT.search(text):
        return "a signed token (JWT)"
    if hex_key(text):
        return ("a key (32 or more hex digits, like a subscriber key K or OPc; a page or message ID that holds "
                "such a run counts too: record a pointer without the 32-digit run, e.g. the page title)")
    if OCTAL_ESCAPES.search(text):
        return "a key (16 or more bytes written as octal escapes, like \\106\\133\\134)"
    if basic_credentials(text):
        return "a user and password in base64 (HTTP Basic authentication)"
    urls = list(URL.finditer(text)) if "://" in text else []
    if any(url_password(m) for m in urls):
        return "a password in a URL (user:password@host)"
    if urls and SNMP_URL.search(text):
        return "an SNMP community in a URL (snmp://community@host)"
    if "@" in text and any(address_password(m) for m in ADDRESS_PASSWORD.finditer(text)):
        return "a password in an address (user:password@host)"
    plain = URL.sub(url_values, text) if urls else text
    if urls and WEBHOOK.search(text):
        return "a webhook URL (its path is its secret)"
    if "SHA256:" in plain or "SPDXRef-" in plain or "Change-Id:" in plain:
        plain = NOT_BASE64.sub(" ", plain)
    plain = " ".join([plain] + joined_groups(plain))
    if any(base32_key(run) for run in BASE32_RUN.findall(plain)):
        return "encoded key material (a base32 run)"
    if any(base64_key(run) for run in B64_RUN.findall(plain) if not HEX_ONLY.fullmatch(run)):
        return "encoded key material (a base64 run)"
    if any(not NUMBERING_BEFORE.search(text, max(0, m.start() - NUMBERING_REACH), m.start())
           for m in KEYPAD_RUN.finditer(text)):
        return KEYPAD_KIND
    if DIAL_RUN.search(text):
        return DIAL_KIND
    if any(not CODE_YEAR.fullmatch(m.group("number")) for after in (KEY_AFTER, KEY_NAMED_AFTER, HASH_AFTER, TO_DISARM)
           for m in after.finditer(text)) or \
            any(not CODE_YEAR.fullmatch(m.group("number")) and not labelled_number(text, m.start("number"))
                for after in (HASH_TOKEN_AFTER, KEYPAD_AFTER) for m in after.finditer(text)):
        return KEY_AFTER_KIND
    if any(code_list(m.group()) for m in CODE_LIST.finditer(text)) or BACKUP_RUN.search(text) or codes_listed(text) or \
            len([g for g in MIXED_GROUPS.findall(text) if re.search("[A-Z]", g) and re.search("[0-9]", g)]) >= 3 or \
            len([part for g in MIXED_GROUPS.findall(text) for part in g.split("-")
                 if re.search("[A-Z]", part) and re.search("[0-9]", part)]) >= 3:
        return CODE_LIST_KIND
    return None


def labelled_number(text, at):
    """True if the word before the number at `at` says what it counts or names ('port 8443 # TLS': NUMBER_LABELS, but
    a room's or zone's name, where a door's code is typed)."""
    before = re.findall(r"[^\W\d_]+", text[:at].lower())[-1:]
    return bool(before) and before[0] in NUMBER_LABELS - {"room", "zone", "zones"}


def code_list(found):
    """True if groups of four digits (CODE_LIST) are codes: not years alone ('2024-2025, 2025-2026'), nor ranges of round
    numbers alone ('ports 5000-5999 7000-7999')."""
    pairs = re.findall("([0-9]{4})-([0-9]{4})", found)
    return not all(map(LIST_YEAR.fullmatch, re.findall("[0-9]{4}", found))) and \
        not (pairs and all(int(low) < int(high) and low.endswith("0") and high[-1] in "09" for low, high in pairs))


def codes_listed(text):
    """True if a text lists codes after a word naming them (CODES_LISTED): three or more, or two of eight digits or
    more, each with other first two digits, and no kind of code named (CODE_KIND)."""
    for m in CODES_LISTED.finditer(text):
        numbers = re.findall("[0-9]+", m.group("list"))
        if (len(numbers) >= 3 or min(map(len, numbers)) >= 8) and len({n[:2] for n in numbers}) == len(numbers) and \
                not CODE_KIND.search(text):
            return True
    return False


def sim_code(text):
    """True if a SIM card's access code or OTA key follows its label in a text already scanned: the value's first
    token, cut at an en or em dash as a password is (TOKEN_DASHES) and at a comma, without quotes, brackets and end
    punctuation."""
    return any((SIM_CODE if m.group("code") else SIM_KEY).fullmatch(
        re.split("[,;]", TOKEN_DASHES.split(m.group("value"))[0])[0].strip(SECRET_VALUE_EDGES))
        for m in SIM_LABEL.finditer(text))


def credential_token(text):
    """A token that looks like a password or key in a text already scanned that names one (CREDENTIAL_WORD,
    SIM_WORD), as (the token, the word), or None: a lone word after a password's own word (PASSWORD_AT_END), a run
    of numbers that fit a byte (byte_run), or a token judged by context_secret(), tokens ending where the script
    changes (SCRIPT_BOUNDARY) and at en and em dashes, numbers that a noun or unit names left out (NAMED_NUMBER)."""
    text = credential_sentences(phone_blanked(text, cued_only=True))   # 'ext. 4417' is a phone's
    word = credential_word(text)
    sim = SIM_WORD.search(text)
    sim = sim if sim and SIM_CASE.search(sim.group()) else None
    word = word or sim or SIM_KEY_WORD.search(text)
    if not word:
        return None
    at_end = PASSWORD_AT_END.search(text)
    lone = at_end.group("word") if at_end and not LIST_BEFORE.search(text, max(0, at_end.start() - LIST_REACH),
                                                                     at_end.start()) else ""
    if lone and lone.lower() not in DESCRIBING_WORDS and not PASSWORD_WORD.match(lone) and not named_token(lone) and \
            not scheme_name(lone.lower()):
        return lone, word.group()
    run = byte_run(text)
    if run:
        return run, word.group()
    short = "sim" if sim else "password" if PASSWORD_NAME.search(text) else None
    for m in PASSWORD_VALUE.finditer(text):
        if context_secret(m.group("value"), short, strict=True) and not VALUE_RANGE_AFTER.match(text, m.end("value")):
            return m.group("value").strip(SECRET_VALUE_EDGES), word.group()
    text = VAULT_ENTRY.sub(" ", schedule_blanked(phone_blanked(text)))
    text = NOT_BASE64.sub(" ", text) if "SHA256:" in text or "SPDXRef-" in text or "Change-Id:" in text else text
    text = HOST_PORT.sub(" ", CLOCK_TIMES.sub(" ", text)) if ":" in text else text
    text = SECTION.sub(" ", text) if "(" in text else text
    text = DASHED_RANGE.sub(lambda m: " " if number_range(m.group().replace("\u2013", "-")) else m.group(), text)
    text = NAMED_NUMBER.sub(" ", TOKEN_BREAKS.sub(" ", SCRIPT_BOUNDARY.sub(" ", text)) if not text.isascii() else text)
    text = ACCOUNT_NAMED.sub(" ", MONTH_YEAR.sub(" ", text))
    text = PHONE.sub(" ", PGP_KEY_ID.sub(" ", text) if PGP_WORD.search(text) else text)
    judged, members = set(), series(text)             # a token met again is judged once
    for raw in NON_SPACE.findall(text):
        if raw not in judged and raw.strip(SECRET_VALUE_EDGES) not in members:
            if context_secret(raw, short):
                return raw.strip(SECRET_VALUE_EDGES), word.group()
            judged.add(raw)
    return None


def bound_secret(text):
    """A value that a text already scanned gives for a password, PIN, code or key, as (the value, its name), or None:
    named the password (REVERSE_USED, REVERSE_NAMED), after the name (bound_value), as a user's password
    (user_pair_password), on a command line (COMMAND_PASSWORDS) or a code's number (code_number)."""
    for reverse in (REVERSE_USED, REVERSE_NAMED):
        for m in reverse.finditer(text):
            word = m.group("word").strip(SECRET_VALUE_EDGES)
            if word and word.lower() not in SLOT_WORDS and not PASSWORD_WORD.match(word) and \
                    not NEGATION_WORD.search(m.group()):
                return word, m.group("name")
    called = phone_blanked(text, cued_only=True)     # 'Password reset line: 0800 4410 222'
    found = bound_value(called) or (bound_value(SPELLED.sub(spelled_word, called)) if SPELLED.search(called) else None) or \
        user_pair_password(text) or short_label(text) or default_with(text) or seed_words(text) or login_with(text) or \
        snmp_value(text) or \
        community_token(text) or joined_code(text) or kept_secret(text) or number_for_place(text) or \
        quoted_passphrase(text) or bare_code(text) or told_in_pieces(text)
    for command in () if found else COMMAND_PASSWORDS:
        m = command.search(text)
        value = m.group("value").strip(SECRET_VALUE_EDGES) if m else ""
        if len(value) >= 4 and not VALUE_PLACEHOLDER.fullmatch(m.group("value").strip(PLACEHOLDER_EDGES)) and \
                not PORT.fullmatch(value) and not scheme_name(value.lower()):
            label = text[m.start():m.start("value")].strip(" \t=:'\"")   # 'authentication text', not 'echo'
            return value, label if COMMAND_LABEL.search(label) else ""
    for m in () if found else (m for protected in PROTECTED for m in protected.finditer(text)):
        if context_secret(m.group("value"), "password", strict=True):
            return m.group("value").strip(SECRET_VALUE_EDGES), m.group("name")
    for m in () if found else ENV_LABEL.finditer(text):   # 'PGPASSWORD=Buttercup': judged as after a password's name
        value = slot_secret(m.group("value"), False)
        if value:
            return value, text[m.start():m.start("value")].strip(" =:")
    return found or code_number(text) or wifi_value(text) or number_before_code(text) or stated_default(text) or \
        phrase_after_name(text) or colon_phrase(text) or set_phrase(text) or alarm_tail(text)


# A password under a short label after a user's ('u: ops / p: ops123'), a user's name given again as its password
# ('user ops pass ops'), or a device's enable password ('Enable: Greenfield5G', three small letters and a digit in it)
USER_P = re.compile(r"(?<![^\W_])u(?:ser(?:name)?)?\s*[:=]\s*[^\s,;/:=]+\s*[/,;]?\s*p(?:ass(?:word)?|w|wd)?\s*[:=]\s*"
                    r"(?P<value>[^\s,;()]+)", re.I)
USER_TWICE = re.compile(r"(?<![^\W_])(?:user(?:name)?|login)\s*[:=]?\s*(?P<user>[\w.-]{2,30})\s*[,;/]?\s*"
                        r"(?:pass(?:word)?|pw|pwd)\s*[:=]?\s*(?P<value>[\w.-]{2,30})(?![\w.-])", re.I)
ENABLE_VALUE = re.compile(r"(?<![^\W_])(?i:enable)\s*[:=]\s*(?P<value>(?=[^\s,;()]*[0-9])(?=[^\s,;()]*[a-z]{3})"
                          r"[^\s,;()]{6,64})")   # a word in it ('Greenfield5G'), not 'LLDPv2' or 'G.8275.1'


def short_label(text):
    """A password under a short label (USER_P), a user's name given again as its password (USER_TWICE) or an enable
    password (ENABLE_VALUE), as (password, label), or None."""
    for m in USER_P.finditer(text):
        value = slot_secret(m.group("value"), False)
        if value:
            return value, "p:"
    for m in USER_TWICE.finditer(text):
        if m.group("value").lower() == m.group("user").lower():
            return m.group("value"), "user"
    m = ENABLE_VALUE.search(text)
    value = slot_secret(text[m.start("value"):], False) if m else ""   # not '802.1X', a scheme
    return (value, "enable") if value else None


def login_with(text):
    """A password given with a common account after a log-in verb ('works with operator and sunflower-lamp-42', 'log in
    as admin / Heron-77': LOGIN_WITH), or with any account after 'log into … as' ('log into the U2020 as opsadmin with
    Puffin7': LOGIN_AS), judged as after a password's own name or a passphrase of joined words and a number, as
    (password, account), or None."""
    for m in itertools.chain(LOGIN_WITH.finditer(text), LOGIN_AS.finditer(text)):
        base = ACCOUNT_BASE.match(m.group("user").lower())
        value = m.group("value").strip(SECRET_VALUE_EDGES)
        common = m.re is LOGIN_AS or base and base.group() in ACCOUNT_NAMES
        if common and (context_secret(value, "password", strict=True) or
                                                        JOINED_PHRASE.fullmatch(value) and re.search("[0-9]", value)):
            return value, m.group("user")
    return None


def snmp_value(text):
    """A community, a word and a number, right after 'SNMP:' in any language's sentence ('comunåte SNMP: nameur55':
    SNMP_VALUE), as (value, 'SNMP'), or None."""
    m = SNMP_VALUE.search(text)
    return (m.group("value"), "SNMP") if m else None


def community_token(text):
    """A token named as communities are ('kestrel_ro', 'osprey-ro-7', 'publicro7', 'zabbix-read-42': COMMUNITY_TOKEN) in
    a text that names SNMP or v2c, whatever its words ('Comunidá SNMP (namái llectura): asturies_ro7'), as (token,
    'SNMP'), or None; not one a place's name comes before ('vault entry kestrel_ro'), that names SNMP itself
    ('snmp_ro') or an access ('read-write')."""
    if not SNMP_NAMED.search(text):
        return None
    for m in COMMUNITY_TOKEN.finditer(text):
        before = re.findall(r"[^\W\d_]+", text[:m.start()].lower())[-1:]
        if not (before and before[0] in PHRASE_PLACES) and m.group("word").lower() not in \
                PHRASE_NAMING_PIECES | COMMUNITY_NOT_WORDS:
            return m.group("value"), "SNMP"
    return None


def joined_code(text):
    """A code's number joined to its name ('code4471', 'doorcode4471', 'door-code-4471' in a wiki's path: JOINED_CODE),
    as (number, name), or None."""
    m = next((m for m in JOINED_CODE.finditer(text) if not CODE_YEAR.fullmatch(m.group("number"))), None)
    return (m.group("number"), m.group("name")) if m else None


def kept_secret(text):
    """A number of four to eight digits in a text that asks to keep something secret ('4471, keep it to yourself':
    SECRECY), as (number, the words that ask), or None; not a year, a phone's number or one a label names ('ticket
    4471': NUMBER_LABELS)."""
    secrecy = SECRECY.search(text)
    if not secrecy:
        return None
    for m in SECRECY_NUMBER.finditer(phone_blanked(text)):
        before = re.findall(r"[^\W\d_]+", text[:m.start()].lower())[-1:]
        named = before and (before[0] in NUMBER_LABELS or before[0] == "ext") and \
            not (before[0] in PLACE_LABELS and CODE_WORD.search(text))   # 'door code … server room 2468, keep it'
        if not CODE_YEAR.fullmatch(m.group()) and not named:
            return m.group(), secrecy.group()
    return None


def quoted_passphrase(text):
    """A passphrase of two words or more and a number, quoted, in a text that names Wi-Fi, a PSK or a password in any
    language ('«Gaivota-Costa-55» é o contrasinal da wifi', 'IPsec PSK ᰍᰪᰰ "Rongnyu Chu 47"': QUOTED_PHRASE), as (passphrase, the name), or None; not
    where a network's name is given (QUOTED_NAMING: 'SSID', 'called') nor after a place's name ('vault entry "…"')."""
    named = WIFI_CONTEXT.search(text) or PHRASE_CONTEXT.search(text) or credential_word(text)
    if not named or QUOTED_NAMING.search(text):
        return None
    for m in QUOTED_PHRASE.finditer(text):
        pieces = [piece.lower() for piece in re.split("[-_ ]", m.group("phrase"))]
        before = re.findall(r"[^\W\d_]+", text[:m.start()].lower())[-1:]
        if " " in m.group("phrase") and TITLE_WORDS.intersection(pieces):
            continue                                  # '"Security Plan 2024"', '"Access Control Policy 12"': titles
        if sum(bool(LETTER_PIECE.fullmatch(piece)) and len(piece) >= 3 for piece in pieces) >= 2 and \
                any(piece.isdigit() for piece in pieces) and not PHRASE_NAMING_PIECES.intersection(pieces) and \
                not (before and before[0] in PHRASE_PLACES):
            return m.group("phrase"), named.group()
    return None


def told_in_pieces(text):
    """A code or password told in pieces, as (the pieces, the name), or None: a code's two halves where a keypad, door or
    alarm or a code is named (SPLIT_CODE: 'first two digits 82, last two 64', 'door: 82 then 64'), a value typed with
    how to type it (TYPED_WITH_HINT: 'type otter meadow 57 (lower case, dashes between)'; ALL_ONE_WORD: 'log in as
    admin with lantern ferry seventy seven, all one word'), a number after its length ('4-digit 2718'), digits spelled
    out as words,
    or letters and digits one by one (SPELLED_VALUE: 'G-R-4-N-I-T-E-7-7'), where a password or login is named ('Kestrel
    hash seven seven eight one')."""
    split = SPLIT_CODE.search(text)
    name = split and (KEYPAD_PLACE.search(text) or GENERIC_CODE.search(text))
    if name:
        return (split.group("first") or split.group("half")) + (split.group("second") or split.group("rest")), name.group()
    typed = TYPED_WITH_HINT.search(text)
    if typed:
        return typed.group("value"), typed.group("verb")
    told = next((m for m in DIGIT_COUNT.finditer(text) if len(m.group("number")) == int(m.group("count")) and
                 not CODE_YEAR.fullmatch(m.group("number"))), None)
    if told:
        return told.group("number"), told.group("count") + "-digit"
    dictated = ALL_ONE_WORD.search(text)
    word = dictated and credential_word(text)
    if word:
        return dictated.group(), word.group()
    spelled = SPELLED_DIGITS.search(text) or \
        next((m for m in PHONETIC_RUN.finditer(text) if len(PHONETIC_WORD.findall(m.group())) >= 2), None) or \
        next((m for m in SPELLED_VALUE.finditer(text) if re.search("[0-9]", m.group())
                                                   and re.search(r"[^\W\d_]", m.group()) and len(m.group()) >= 11), None)
    word = spelled and (credential_word(text) or SIM_WORD.search(text))
    return (spelled.group(), word.group()) if word else None


SPLIT_CODE = re.compile(r"(?<![^\W_])(?:first\s+(?:two|three|2|3)(?:\s+digits?)?(?:\s+(?:are|is))?\s*[:=]?\s*(?P<first>[0-9]{2,4})"
                        r"[^0-9\n]{1,30}?last\s+(?:two|three|2|3)(?:\s+digits?)?(?:\s+(?:are|is))?\s*[:=]?\s*(?P<second>[0-9]{2,4})|"
                        r"(?<![\w.,/-])(?P<half>[0-9]{2,4})\s*,?\s*(?:and\s+)?then\s+(?P<rest>[0-9]{2,4}))(?![\w.,/-]|[.,][0-9])", re.I)
# A value spelled in the phonetic alphabet, four words or more, two of them letters ('Hotel Echo Romeo Oscar Nine Nine')
PHONETIC_LETTER = (r"(?:alfa|alpha|bravo|charlie|delta|echo|foxtrot|golf|hotel|india|juliett?|kilo|lima|mike|november|oscar|"
                   r"papa|quebec|romeo|sierra|tango|uniform|victor|whiske?y|x-?ray|yankee|zulu)")
PHONETIC_RUN = re.compile(rf"(?<![\w-])(?:(?:{PHONETIC_LETTER}|{DIGIT_WORD}|niner)[\s,-]+){{3,}}(?:{PHONETIC_LETTER}|{DIGIT_WORD}|niner)"
                          r"(?![\w-])", re.I)
PHONETIC_WORD = re.compile(rf"(?<![\w-]){PHONETIC_LETTER}(?![\w-])", re.I)
DIGIT_COUNT = re.compile(r"(?<![^\W_])(?P<count>[4-8])-digit\s+(?P<number>[0-9]{4,8})(?![\w.,/-])", re.I)
ALL_ONE_WORD = re.compile(r"[,(\u2014-]\s*all\s+(?:in\s+)?one\s+word(?![^\W_])", re.I)   # said after the value
TYPED_WITH_HINT = re.compile(r"(?<![^\W_])(?P<verb>type|enter|key\s+in)\s+(?P<value>[^()\n]{0,30}?[0-9][^()\n]{0,30}?)\s*\(\s*(?:all\s+)?"
                             r"(?:(?:lower|upper)[\s-]?case|case[\s-]sensitive|no\s+spaces|(?:with\s+)?dashes)", re.I)


def bare_code(text):
    """A number right after a bare 'code' that opens the answer or a clause, or follows 'the', 'our' and the like ('code
    5830', 'the code is 5830': BARE_CODE), as (number, 'code'), or None; not where a word says what kind ('error code
    5830', 'CPV code'), nor a year."""
    m = next((m for m in BARE_CODE.finditer(text) if not CODE_YEAR.fullmatch(m.group("number"))), None)
    return (m.group("number"), m.group("name")) if m else None


def number_for_place(text):
    """A number that opens the answer and is 'for' a door, gate, shutter, lock or safe named at its clause's end ('7720
    for the roller shutter': NUMBER_FOR_PLACE), as (number, place), or None; not a year."""
    m = NUMBER_FOR_PLACE.match(text)
    return (m.group("number"), m.group("name")) if m and not CODE_YEAR.fullmatch(m.group("number")) else None


QUOTED_PHRASE = re.compile(r"[\"'\u00ab\u201c\u2018](?P<phrase>(?:[^\W\d_]|(?![^\W\d_])[" + WORD_MARKS + r"])+(?:[-_ ](?:[^\W_]|[" +
                           WORD_MARKS + r"])+){2,})[\"'\u00bb\u201d\u2019]")
TITLE_WORDS = frozenset("policy policies standard guide plan section chapter annex appendix version release document manual "
                        "rules procedure handbook baseline".split())
QUOTED_NAMING = re.compile(r"ssid|network\s+name|called|named", re.I)
BARE_CODE = re.compile(r"(?:^\s*|[.;,:!?(]\s*|(?<![^\W_])(?:the|a|our|my|this|that|new|current|usual|same)\s+)"
                       r"(?P<name>codes?)\s*(?:is\s+|[:=]\s*)?(?P<number>[0-9]{4,8})(?![\w/.,-]|[.,][0-9])", re.I)
NUMBER_FOR_PLACE = re.compile(r"\s*(?P<number>[0-9]{4,8})\s+for\s+(?:the\s+)?(?:[^\W\d_]+\s+){0,3}(?P<name>door|gate|shutter|"
                              r"keypad|padlock|lock|cage|cabinet|safe|barrier|turnstile|alarm|panel)(?=\s*(?:[.,;!]|$))", re.I)
JOINED_CODE = re.compile(r"(?<![^\W_])(?P<name>(?:door|gate|alarm|keypad|lock|entry|access)?codes?|(?:door|gate|alarm|keypad|"
                         r"lock|entry|access)[-_]codes?[-_])(?P<number>[0-9]{4,8})(?![^\W_]|[.,/-][0-9])", re.I)
SECRECY = re.compile(r"(?<![^\W_])(?:keep\s+(?:it|this|them)\s+(?:to\s+yourself|secret|private|quiet)|(?:don['\u2019]?t|do\s+not|"
                     r"never)\s+(?:tell|share|give\s+(?:it|this)\s+(?:out|away)|pass\s+(?:it|this)\s+on|write\s+(?:it|this))|tell\s+no\s*one|"
                     r"ayaw\s+(?:ipanghatag|ihatag|ipakita|isulti|ipasa)|(?:huwag|wag)\s+(?:ibigay|ipamigay|ipakita|sabihin|ipasa)|delete\s+(?:this|it)(?:\s+(?:message|sms|text))?(?:\s+after\s+reading)?|burn\s+after\s+reading)(?![^\W_])", re.I)
PLACE_LABELS = frozenset({"room", "zone", "zones"})   # a place's number, unless a door's code is named: kept_secret
SECRECY_NUMBER = re.compile(r"(?<![\w.,/:#-])[0-9]{4,8}(?![\w/:%-]|[.,][0-9])")
SNMP_NAMED = re.compile(r"snmp|v2c", re.I)
COMMUNITY_TOKEN = re.compile(r"(?<![\w/.@-])[\"'\u201c\u2018\u00ab]?(?P<value>(?P<word>[^\W\d_]{2,})(?:[_-][^\W\d_]{2,})*?"
                             r"(?:[_-](?:ro|rw|read|write|mon)(?:[_-]?[0-9]{1,4})?|(?<=public|privat)e?(?:ro|rw)[0-9]{0,4}))"
                             r"[\"'\u201d\u2019\u00bb]?(?![\w/.@-])", re.I)
COMMUNITY_NOT_WORDS = {"read", "write", "ro", "rw"}             # 'read-write' names an access
LOGIN_WITH = re.compile(r"(?<![^\W_])(?:works|log(?:s|ged)?\s*in|sign(?:s|ed)?\s*in|logon|login|access(?:ed)?|"
                        r"connect(?:s|ed)?)\s+(?:with|using|as)\s+['\"]?(?P<user>[\w.@-]{2,32})['\"]?\s+(?:and|&|\+|/)\s+"
                        r"(?P<value>[^\s,;]{4,60})", re.I)
LOGIN_AS = re.compile(r"(?<![^\W_])(?:log(?:s|ged)?\s*(?:in|on)(?:to)?|sign(?:s|ed)?\s*in(?:to)?)\s+(?:[^\s,;]+\s+){0,3}?as\s+"
                      r"['\"]?(?P<user>[\w.@-]{2,32})['\"]?\s+(?:with|using)\s+(?P<value>[^\s,;]{4,60})", re.I)
SNMP_VALUE = re.compile(r"(?<![^\W_])snmp\s*:\s*[\"'\u201c\u2018]?(?P<value>(?!(?:udp|tcp|port|vlan|ver|version)[0-9])"
                        r"[^\W\d_]{3,}[0-9]{2,4})(?![\w.])", re.I)


def alarm_tail(text):
    """The number that ends a sentence naming an alarm, after a comma and a few words (ALARM_NAME, ALARM_TAIL), the
    last not capitalised ('Galaxy 3500' is a model), or before one word that is no unit (NUMBER_WORD_END), or a few
    words after its name and ':' (ALARM_LABEL), as (number, the alarm's name), or None."""
    for sentence in SENTENCE_SPLIT.split(CJK_DIGITS.sub(" ", text)):   # '先按4708' as '先按 4708'
        if len(set(LISTED_NUMBER.findall(sentence))) > 1:
            continue                                  # 'Alarm 3101 critico, 3102 maggiô': alarms' IDs, listed
        alarm, m, end = ALARM_NAME.search(sentence), ALARM_TAIL.search(sentence), NUMBER_WORD_END.search(sentence)
        typed = m.group("words").split() if m else [" "]
        words = [word.lower().strip(".,") for word in typed]
        if alarm and m and not CODE_YEAR.fullmatch(m.group("number")) and not TAIL_NAMING.intersection(words) and \
                not any("nr" in word for word in words) and unicodedata.category(typed[-1][0]) not in ("Lu", "Lt"):
            return m.group("number"), alarm.group()
        if alarm and end and not CODE_YEAR.fullmatch(end.group("number")) and end.group("word").lower().rstrip(",;:") not in TAIL_UNITS \
                and not CHINESE_UNIT.match(end.group("word")) \
                and not SEVERITY.match(end.group("word").lower()) \
                and (end.group("before") or "").lower() not in NUMBER_LABELS:
            return end.group("number"), alarm.group()
    for alarm in ALARM_NAME.finditer(text):
        m = ALARM_LABEL.match(text, alarm.end())
        words = m.group("words").split() if m else []
        if m and not CODE_YEAR.fullmatch(m.group("number")) and not NUMBER_LABELS.intersection(w.lower() for w in words) \
                and not (words and unicodedata.category(words[-1][0]) in ("Lu", "Lt")) and \
                (m.group("next") or "").lower() not in TAIL_UNITS:
            return m.group("number"), alarm.group()
    pressed = CHINESE_PRESSED.search(text)
    alarm = pressed and ALARM_NAME.search(text)
    return (pressed.group("number"), alarm.group()) if alarm else None


def phrase_after_name(text):
    """A passphrase of joined words and a number a few words after a PSK's, community's (COMMUNITY), Wi-Fi's or key's
    name (PASSPHRASE_NAME, CAMEL_PASSPHRASE_NAME, JOINED_PHRASE), or anywhere in a text naming IPsec, IKE, Wi-Fi or SNMP
    (PHRASE_CONTEXT: 'moss-harbor-3310 on both peers (IKEv2)', 'tulou-san-52') or a password in any language
    (PASSWORD_NAME: 'पासवर्ड litti-chokha-31'): words in lower case, seven letters or more (six where SNMP is named),
    and a number of two to four digits; not a host's name with its number
    padded ('london-gateway-01') or a piece that names one (PHRASE_NAMING_PIECES: 'ap-lobby-12'), as (the passphrase,
    the name), or None."""
    for name in itertools.chain(PASSPHRASE_NAME.finditer(text), CAMEL_PASSPHRASE_NAME.finditer(text)):
        clause = PHRASE_CLAUSE_END.split(text[name.end():name.end() + PHRASE_REACH])[0]
        for m in JOINED_PHRASE.finditer(clause):
            between = re.findall(r"[^\W\d_]+", clause[:m.start()].lower())
            pieces = [piece.lower() for piece in re.split("[-_]", m.group("phrase"))]
            words = sum(bool(LETTER_PIECE.fullmatch(piece)) and len(piece) >= 4 for piece in pieces)
            letters = [len(piece) for piece in pieces if LETTER_PIECE.fullmatch(piece)]
            if len(between) <= PHRASE_WORDS_BETWEEN and not (between and between[-1] in PHRASE_PLACES) and \
                    "ssid" not in between and not PHRASE_NAMING_PIECES.intersection(pieces) and \
                    any(piece.isdigit() for piece in pieces) and \
                    (words >= 2 or words and len(letters) >= 2 and sum(letters) >= PHRASE_LETTERS and
                     PSK_NAME.search(name.group()) or
                     words and COMMUNITY.search(name.group()) and {"rw", "ro"} & set(pieces)):
                return m.group("phrase"), name.group()
    named = PHRASE_CONTEXT.search(text) or PASSWORD_NAME.search(text)
    fewest = 6 if named and named.group().lower() in ("snmp", "v2c") else 7      # 'spv-noc-907'
    text = CJK_LATIN.sub(" ", text) if named else text   # 'パスはtakoyaki-osaka-77やで'
    for m in JOINED_PHRASE.finditer(text) if named else ():
        typed = re.split("[-_]", m.group("phrase"))
        letters = [len(piece) for piece in typed if LETTER_PIECE.fullmatch(piece) and piece.lower() == piece]
        before = re.findall(r"[^\W\d_]+", text[:m.start()].lower())[-1:]
        if len(letters) >= 2 and len(letters) == len(typed) - 1 and max(letters) >= 3 and sum(letters) >= fewest and \
                (re.fullmatch("[1-9][0-9]{1,3}", typed[-1]) or re.fullmatch("[1-9]", typed[-1]) and sum(letters) >= 10) and \
                not PHRASE_NAMING_PIECES.intersection(typed) and not (before and before[0] in PHRASE_PLACES | HOST_BEFORE):
            return m.group("phrase"), named.group()
    return None


def colon_phrase(text):
    """A community or passphrase of lower-case words joined by '-' or '_', alone after ':' at a clause's end (COLON_PHRASE)
    in a text naming SNMP, Wi-Fi or IPsec, or anywhere (JOINED_WORDS) in one naming an SNMP community in any language
    (COMMUNITY: 'SNMP团体名全部改成 mala-xiaolongxia'), as (value, name), or None: eight letters or more, a word of four;
    not a setting's words (COLON_SETTINGS) or a place's value (PHRASE_PLACES, COLON_LABELS, HOST_BEFORE)."""
    named = SNMP_NAMED.search(text) or PHRASE_CONTEXT.search(text)
    if not named:
        return None
    anywhere = SNMP_NAMED.search(named.group()) and COMMUNITY.search(text)
    for m in (JOINED_WORDS if anywhere else COLON_PHRASE).finditer(text):
        pieces = re.split("[-_]", m.group("phrase"))
        sizes = [len(piece) for piece in pieces if not piece.isdigit()]
        before = re.findall(r"[^\W\d_]+", text[max(0, m.start() - PHRASE_REACH):m.start()].lower())[-1:]
        if all(piece == piece.lower() for piece in pieces) and sum(sizes) >= COLON_LETTERS and max(sizes) >= 4 and \
                not (COLON_SETTINGS | PHRASE_NAMING_PIECES).intersection(pieces) and \
                not (before and before[0] in PHRASE_PLACES | COLON_LABELS | HOST_BEFORE):
            return m.group("phrase"), named.group()
    return None


def set_phrase(text):
    """A value of joined words with a digit that a verb sets ('we set it to rittal-rack4-cmc', 'reset to shelter-cam-9',
    'credentials set to copper-kettle-88': SET_PHRASE) in a text naming a login, an account or a password
    (credential_word), as (value, the verb), or None; not a piece naming equipment (PHRASE_NAMING_PIECES)."""
    for m in SET_PHRASE.finditer(text):
        pieces = re.split("[-_]", m.group("value").lower())
        if any(re.fullmatch("[a-z]{3,}[0-9]{1,4}|[0-9]{1,4}", piece) for piece in pieces) and \
                sum(piece.isalpha() for piece in pieces) >= 2 and \
                not PHRASE_NAMING_PIECES.intersection(pieces) and credential_word(text):
            return m.group("value"), m.group("verb")
    return None


def number_before_code(text):
    """A number followed by a code's name in the instrumental (NUMBER_THEN_CODE: '2580 koduyla'), or that a verb, a dash
    or a bracket gives a door's, lock's or safe's code after it (NUMBER_FIRST: '4711 ist der
    Türcode', "4711 c'est le code de la porte", '4711 (Türcode Hintereingang)'), as (number, name), or None: the name
    says it is a code (CODE_SUFFIX), or is a code's generic name and a door's, lock's or safe's name follows; or a number
    that starts a clause naming a code (LEADING_NUMBER, CODE_STEM), but a year, a kind of code or a document's numbering."""
    text = schedule_blanked(phone_blanked(text))
    for m in NUMBER_THEN_CODE.finditer(text):         # '2580 koduyla', 'a 4417 kóddal'
        if not (CODE_YEAR.fullmatch(m.group("number")) or
                CODE_KIND.search(text, max(0, m.start() - CODE_KIND_REACH), m.end() + CODE_KIND_REACH)):
            return m.group("number"), m.group("name")
    for m in NUMBER_FIRST.finditer(text):
        name = m.group("name")
        if CODE_YEAR.fullmatch(m.group("number").rstrip("#*")):
            continue
        if CODE_WORD.fullmatch(name) and CODE_SUFFIX.search(name):
            return m.group("number"), name
        if GENERIC_CODE.fullmatch(name):
            place = next((w for w in CODE_WORD.finditer(text, m.end(), m.end() + CODE_IS_REACH)
                          if w.group().lower() not in ("code", "codes")), None)
            if place:
                return m.group("number"), name
    for m in LEADING_NUMBER.finditer(text):
        head = LEADING_WORDS.match(m.group("rest")).group()  # '1200 SIM cards issued, PIN and PUK codes in …': a count
        stem = CODE_STEM.search(head) or named_after(m.group("rest")) or door_code(head)
        if stem and not CODE_YEAR.fullmatch(m.group("number")) and not CODE_KIND.search(m.group("rest")) and \
                not NUMBERING_BEFORE.search(text, max(0, m.start("number") - NUMBERING_REACH), m.start("number")):
            return m.group("number"), stem.group()
    return None


def named_after(rest):
    """The name of a door's, gate's or lock's code after a colon, dash or bracket that follows a number ('9157 — back gate
    code', '9157: door code'), as a match, or None."""
    if not NAME_AFTER.match(rest):
        return None
    place = place_named(rest)
    return place if place and (CODE_SUFFIX.search(place.group()) or GENERIC_CODE.search(rest) or
                               NUMBER_FOR.search(rest)) else None


def place_named(text):
    """The first door's, gate's or lock's name in a text (CODE_WORD) but a bare 'code', as a match, or None."""
    return next((w for w in CODE_WORD.finditer(text) if w.group().lower() not in ("code", "codes")), None)


NAME_AFTER = re.compile(r"\s*[:(\u2013\u2014-]")
SIM_BEFORE = re.compile(r"(?<![^\W_])sim\s$", re.I)      # 'SIM pin' in any case
PIN_DIGITS = re.compile(r"\s*(?:[:=]|is\s)?\s*[0-9]{4,8}(?![0-9])", re.I)     # 'pin 5809', 'pin: 5809'
SIM_NAMED = re.compile(r"(?<![^\W_])(?:[eu]?sims?|puks?)(?![^\W_])", re.I)    # 'pin … test SIMs', 'pin …, puk …'
NUMBER_FOR = re.compile(r"(?<![^\W_])(?<!phone )(?<!fax )(?<!serial )(?<!part )(?<!order )(?<!ticket )number\s+"
                        r"(?:for|to|on)(?![^\W_])", re.I)       # '4821 — the number for the keypad', not a phone's
LEADING_WORDS = re.compile(r"(?:\s*[^\s,]+){0,8}")          # a leading number's first words, up to a comma


def door_code(head):
    """A door's, gate's or lock's name in a leading number's first words that also name a code ('4512 mao ang code sa
    likod nga gate'), as a match, or None."""
    place = place_named(head)
    return place if place and GENERIC_CODE.search(head) else None


def stated_default(text):
    """A vendor's default password in a text that names a password (PASSWORD_NAME, CREDENTIAL_WORD), as (value, name), or
    None: a value only defaults use, in lower case (STATED_DEFAULTS: 'iDRAC password still calvin'), or a common account
    after 'still', 'left as' and the like (DEFAULT_LEFT: 'BMC password left as admin'); without such a name, a common
    account and its twin or default after a space alone (DEFAULT_PAIR: 'iDRAC root calvin', 'BMC default ADMIN ADMIN')."""
    named = PASSWORD_NAME.search(text) or credential_word(text)
    if named:
        value = next((t for t in (raw.strip(SECRET_VALUE_EDGES) for raw in NON_SPACE.findall(text)) if t in STATED_DEFAULTS),
                     None)
        left = next((m for m in DEFAULT_LEFT.finditer(text)
                     if m.group("value").lower() in ACCOUNT_NAMES | STATED_DEFAULTS), None)
        if value or left:
            return value or left.group("value"), named.group()
    for m in DEFAULT_PAIR.finditer(text):
        user, password = m.group("user").lower(), m.group("password").lower()
        base = ACCOUNT_BASE.match(user)
        if base and base.group() in ACCOUNT_NAMES and (password in STATED_DEFAULTS or
                                                        password == user and TWIN.fullmatch(password)):
            return m.group("password"), m.group("user")
    return None


def wifi_value(text):
    """A word and a year given for a Wi-Fi network (WIFI_VALUE, WIFI_PAIR), as (value, name), or None."""
    m = WIFI_VALUE.search(text) or WPA_VALUE.search(text) or CONNECT_WITH.search(text) or WIFI_PAIR.search(text) or \
        WIFI_TAIL.search(text)
    if m and "label" in m.groupdict() and NUMBER_LABELS.intersection(m.group("label").lower().split()):
        return None
    return (m.group("value"), "Wi-Fi") if m else None


@functools.lru_cache(maxsize=4)
def wifi_named(text):
    """True if the text names Wi-Fi, a router or RADIUS (WIFI_CONTEXT); looked for once per text, not per name in it."""
    return bool(WIFI_CONTEXT.search(text))


def spelled_word(m):
    """A word spelled out letter by letter (SPELLED), its letters joined: 'P-A-S-S' is 'PASS'."""
    return re.sub(r"[-. _]", "", m.group())



def bound_value(text):
    """A value right after a password's, PIN's, code's or key's own name (BOUND_NAME), as (value, name), or None; a
    bare 'pass' only before ':' or '=' or after a user's word (USER_BEFORE), its value judged as after a space."""
    ends = None                                       # where clauses end (CLAUSE_END), found once
    for m in itertools.islice(BOUND_NAME.finditer(text), NAMES_JUDGED):
        if m.group("sim") and not m.group("sim")[:3].isupper() and not SIM_BEFORE.search(text[max(0, m.start() - 4):
                                                                                                  m.start()]) and \
                not PIN_DIGITS.match(text, m.end()) and not SIM_NAMED.search(text):
            continue                                  # 'pin' in lower case: a pin of a connector, unless 'SIM pin',
                                              # 'pin 5809' or 'pin …' with 'SIMs' or 'puk' in the text

        at, name, bare_key = m.end(), m.group().lower(), m.group("bare")
        if name.startswith("clave") and CODE_KIND.search(text, at, at + CODE_KIND_REACH):
            continue                                  # 'la clave del expediente', a reference
        bare = name == "pass" and text[m.start() - 1:m.start()] not in ("_", ".")   # not '.vault_pass'
        if bare and not (LABEL_COLON.match(text, at) or PASS_IS.match(text, at) and wifi_named(text) or
                         USER_BEFORE.search(text, max(0, m.start() - PASS_BEFORE), m.start())):
            continue
        at += len(CLOSING_QUOTE.match(text, at).group())   # 'password": "Tahini"' (JSON)
        if m.start() and text[m.start() - 1] in "([" and text[at:at + 1] in ")]":
            at += 1                                   # 'IPsec key (PSK): X', the name in brackets
        if bare_key and not (("secret" in name and (LABEL_EQUALS.match(text, at) or
                                                    USER_BEFORE.search(text, max(0, m.start() - PASS_BEFORE),
                                                                       m.start()))) or
                             ((LABEL_EQUALS if "fi" in name else LABEL_COLON if "secret" in name else
                               KEY_OR_QUOTED).match(text, at) and wifi_named(text) and
                              not PGP_WORD.search(text))):
            continue
        particle = bool(m.group("cjk")) and len(m.group()) > len(m.group("cjk"))   # 'パスワードは', '비밀번호는'
        note = NAME_NOTE.match(text, at)              # 'password (temporary): X', judged as after other words
        at = note.end() if note else at
        set_before = SET_BEFORE.search(text, max(0, m.start() - SET_REACH), m.start())
        set_to = set_before and TO_VALUE.match(text, at)   # 'reset the admin password to X', judged as after other words
        separator = BOUND_SEPARATOR.match(text, at) or (COPULA_NAMES.fullmatch(name) and COPULA.match(text, at)) or set_to
        lead = loose = None
        if not (separator or particle or bare_key):
            lead = BOUND_LEAD_FOR.match(text, at)
            if lead is None:
                lead = BOUND_LEAD.match(text, at) or (m.group("own") and BOUND_LEAD_VERB.match(text, at))
                loose = lead and not all(word.lower() in LEAD_QUALIFIERS or word[0].isupper()
                                         for word in lead.group().split())
            if lead:
                at = lead.end()
                after = NAME_NOTE.match(text, at)       # 'Wifi key for room 2 (printed below): X'
                at, note = (after.end(), after) if after else (at, note)
                separator = BOUND_SEPARATOR.match(text, at) or (COPULA_NAMES.fullmatch(name) and COPULA.match(text, at))
        if not separator and set_before:
            separator = set_to = TO_VALUE.match(text, at)   # 'set the password on all nodes to X'
        loose = (loose or bool(set_to) or bool(m.group("described")) or bool(note)) and not PHRASE_NAME.search(name)
        if not (separator or particle or text[at:at + 1].isspace()):
            continue
        start = separator.end() if separator else at
        used = USED_BEFORE.search(text, max(0, m.start() - USED_REACH), m.start())
        spaced = bare or not (separator or particle or used)
        plural = (bool(PLURAL_NAME.search(name)) or name.startswith("schl") or
                  bool(LIST_BEFORE.search(text, max(0, m.start() - LIST_REACH),
                                                                          m.start()))) and \
            bool(separator) and separator.group().strip()[:1] in (":", "=")
        ends = ends if ends is not None else [end.start() for end in CLAUSE_END.finditer(text)] + [len(text)]
        segment = text[start:min(ends[bisect.bisect_left(ends, start)], start + VALUE_REACH)]
        phrase = PHRASE_VALUE.match(segment) if PHRASE_NAME.search(name + (note.group() if note else "")) and \
            separator and separator.group().strip()[:1] in (":", "=") else None
        if phrase and not any(word.lower() in SLOT_WORDS for word in phrase.group("words").split()):
            return segment.strip(), m.group()         # 'Lösenfras: grön hund hoppar 1987'
        run = m.group("own") and RUN_NAME.fullmatch(m.group("own")) and word_run(segment)
        if run:
            return run, m.group()                     # 'log in with correct horse battery staple'
        value = slot_secret(segment, spaced, bool(loose), plural)
        if m.group("sim") and (PIN_NUMBER_NAME.match(text[start:].lstrip()) or not DIGIT.search(value) and
                               not spelled_number(value)):
            continue                                  # 'PIN 1 and PIN 2': the PINs' names; 'PIN aktiv': no PIN's value
        if value and not (bare and value[0].isdigit()) and (DIGIT.search(value) or not CODE_NAME.search(name)):
            return value, m.group()       # not a count after a verdict ('pass: 3 of 4 tests'), a code's number
    return None


# A passphrase of plain lower-case words after a password's own name ('log in with correct horse battery staple',
# 'password correct horse battery staple'), none a word that describes, points or names a way to log in (SLOT_WORDS,
# PHRASE_STOP) or ends as derived words do (DERIVED_END): the words as the value
WORD_RUN = re.compile(r"\s*(?P<words>[a-z]{3,12}(?:\s+[a-z]{3,12}){2,5})\s*[.!]?\s*")
DERIVED_END = re.compile(r"(?:ed|ing|tion|sion|ment|ness|ity|ly|able|ible|ure)$")
RUN_NAME = re.compile(r"pass(?:word|phrase)?|pass\s+phrase|log\s?in\s+with", re.I)    # English names only
PHRASE_STOP = frozenset("your our my his her their we you they them us me google microsoft apple github gitlab facebook "
                        "single sign domain corporate company work school badge card phone token key certificate cert "
                        "fingerprint face biometric two factor multi vpn ssh windows linux password passwords passphrase "
                        "credentials creds account accounts user users admin team desk support initial new old break "
                        "glass procedure process steps instructions method laptop device browser app client".split())


def word_run(segment):
    """The words of a passphrase that make up a value's whole segment (WORD_RUN), or None."""
    m = WORD_RUN.fullmatch(segment)
    words = m.group("words").split() if m else []
    if not words or any(w in SLOT_WORDS or w in PHRASE_STOP or DERIVED_END.search(w) for w in words):
        return None
    return m.group("words")


def spelled_number(value):
    """True if a value's first part is a number's word or a roman numeral (NUMBER_WORDS, ROMAN)."""
    first = NUMBER_WORD_PARTS.split(value)[0]
    return first.lower() in NUMBER_WORDS or bool(ROMAN.fullmatch(first))


LONE_WORD = 6                     # the fewest letters of a lone lower-case word that ends a text after a password's name


def slot_secret(value, spaced, loose=False, plural=False):
    """The first word of a value given after a password's name if it may be the password, or '' (see BOUND_NAME);
    `spaced`: after a space alone; `loose`: after other words and ':' or a verb; `plural`: after a plural name
    ('Passwörter: IT-Servicedesk'), where only a quoted value or a token with a digit or symbol is refused; after
    words that set it ('changed to': SET_TO), the word that follows, as after ':'. A quoted value is refused unless
    it points or names a scheme."""
    value = value.strip()
    set_to = SET_TO.match(value)
    if set_to:
        value, spaced, loose = value[set_to.end():], False, False
    m = FIRST_WORD.match(value)
    raw = m.group("word") if m else ""
    first = raw.strip(SECRET_VALUE_EDGES)
    lower, parts, quoted = first.lower(), first.lower().split("-"), bool(QUOTED.match(value))
    if lower in DEFAULT_VALUES or GLUED_YEAR.fullmatch(first) and not (spaced or loose or plural):
        return first                                  # 'password changeit': a known default; 'dhaka2024', not a scheme
    if not quoted and (lower in SLOT_WORDS or (first[:1].islower() and DESCRIBING_END.fullmatch(first)) or
                       LONG_WORD.fullmatch(first) and not RUN_TOGETHER.fullmatch(first)):
        return ""
    if not quoted and raw[-1:] in LABEL_COLONS and raw[:-1].isalpha() and not raw[0].isupper() and value[m.end():].strip():
        return ""                                     # 'ፖሊሲ፦ ቢያንስ 14': a word in lower case and a colon, a label
    if quoted and len(first) < 3:                     # '"il merlo canta sul tetto"': the words quoted
        first = QUOTED_WORDS.match(value).group("words") if QUOTED_WORDS.match(value) else first
    if len(first) < 3 and not DIGIT.search(first) or COUNT.match(value) or MONTH_YEAR.match(value) or \
            MONTH.fullmatch(first) or \
            VALUE_RANGE.match(value) or number_range(first) or first.islower() and POLICY_VALUE.match(value) or \
            NUMBER_WITH_UNIT.match(value) or URL_VALUE.match(lower) or PATH_START.match(first) or \
            PATH_WITHOUT_START.fullmatch(first) or EMAIL.fullmatch(first) or \
            VALUE_PLACEHOLDER.fullmatch(raw.strip(PLACEHOLDER_EDGES)) or scheme_name(lower) or \
            STANDARD_NUMBER.fullmatch(first) and not (KEYPAD.fullmatch(first) or COMBINATION.fullmatch(first)) or \
            RECORD_ID.fullmatch(lower) or upper_name(first) or CLOCK_TIMES.fullmatch(first) or \
            named_token(first) or CJK.search(first) or ACRONYM_WORD.fullmatch(first) or \
            (ACRONYM_CAPS.fullmatch(first) and not weak_password(first)) or \
            (len(parts) == 2 and (parts[0] in PREFIXES or (DESCRIBING_END.fullmatch(parts[1]) and
                                                           not first[0].isupper()))):
        return ""
    if loose and not plural and "-" in first and word_run(first.replace("-", " ")):
        return first                                  # 'masterkey: horse-battery-staple', words joined by dashes
    if (spaced or loose or plural) and not quoted:
        rest = value[m.end():].strip()
        if PARTICIPLE.fullmatch(first) or spaced and not plural and VERB_S.fullmatch(first) or \
                not (DIGIT.search(first) or SYMBOL.search(first) or (first[0].isupper() and not plural) or
                     (spaced and not rest and not (first.isalpha() and (first.islower() or first.lower() == first.upper()) and
                                                   len(first) < LONE_WORD))):
            return ""                                 # 'password haha', 'password guini': a word ('here') after it
        if first.isupper() and len(first) <= 5 and not weak_password(first):
            return ""                                 # an acronym ('PIN SSO')
    return first


def user_pair_password(text):
    """The password of a user name and its password apart by '/' or ':' (USER_PAIR, USER_COLON), as (password,
    'user /'), or None; a vendor's kind of default (default_credential) or a common weak password after a user name
    in lower case ('weblogic / welcome1') whatever the words around it."""
    text, context = URL.sub(" ", text) if "://" in text else text, None
    for pair, colon in ((USER_PAIR, False), (USER_COLON, True)):
        for m in pair.finditer(text):
            user, password = m.group("user"), m.group("password").strip(SECRET_VALUE_EDGES)
            if user[-1] in ".!?" or DOTTED_NUMBER.fullmatch(user) or IMAGE_TAG.fullmatch(password) or \
                    FILE_NAME.fullmatch(password) or PATH_BEFORE.search(text, max(0, m.start() - PATH_REACH), m.start()):
                continue                              # a sentence's end and its translation; a DOI; an image's tag; a path
            base = ACCOUNT_BASE.match(user.lower())
            lower, account = password.lower(), bool(base) and base.group() in ACCOUNT_NAMES
            following = FOLLOWING_WORD.match(text, m.end())
            if (default_credential(user.lower(), lower, account) or LOWER_WORD.fullmatch(user) and
                    password[:1].isascii() and password[:1].islower() and weak_password(password)) and not (
                    following and following.group("word").lower() in GONE_WORDS or
                    (NEGATION_WORD.search(text, max(0, m.start() - NEGATION_REACH), m.start()) or
                     ATTEMPT.search(text, max(0, m.start() - NEGATION_REACH), m.start()))):
                return password, user + (" :" if colon else " /")
            if context is None and not account and not colon:   # looked for once, when needed
                context = bool(PAIR_CONTEXT.search(text) or credential_word(text))
            ssid = not colon and (context is None or context) and SSID_LIKE.search(user) and wifi_named(text)
            if not (account or context and not colon) or \
                    (password.isalpha() and password.islower() and not (account or ssid)) or \
                    len(password) < 4 or not LETTER.search(user) or lower in ROLE_WORDS or lower in SLOT_WORDS or \
                    lower in VENDOR_NAMES and (not account or user.lower() in VENDOR_NAMES) or \
                    EMAIL.fullmatch(password) or URL_VALUE.match(lower) or PAIR_CONTEXT.fullmatch(password) or \
                    (ACRONYM.fullmatch(password) and not weak_password(password)) or scheme_name(lower) or \
                    STANDARD_NUMBER.fullmatch(password):
                continue
            if following and (PARTICIPLE.fullmatch(following.group("word")) or
                              (not password.isdigit() and named_near_credential(password))):
                continue
            if DIGIT.search(password) and NUMBER.sub("", user) == NUMBER.sub("", password):
                continue                              # 'oper01 / oper02'
            return password, user + (" :" if colon else " /")
    return None


def seed_words(text):
    """The first of six or more words in lower case (or capitalised, or of a script without case), fewer than a third of
    them describing or linking words (SLOT_WORDS: a list's 'access' may be one), given after
    a wallet's seed or mnemonic (SEED_LIST: 'Seed del wallet: ancora bosco carta …'), as (word, name), or None."""
    m = SEED_LIST.search(text)
    words = m.group("value").split() if m else []
    if words and not any(unicodedata.category(c) == "Lu" for word in words for c in word[1:]) and \
            3 * sum(word.lower() in SLOT_WORDS for word in words) < len(words):
        return words[0], m.group("name")
    return None


def default_with(text):
    """A common account and its vendor's default after 'with' (DEFAULT_WITH), as (password, 'user with'), or None: a
    twin, a value only defaults use, or four to eight digits that end the clause; after any name, a value only
    defaults use that is no plain word ('change_on_install')."""
    for m in DEFAULT_WITH.finditer(text):
        user, password = m.group("user").lower(), m.group("password").strip(SECRET_VALUE_EDGES)
        base = ACCOUNT_BASE.match(user)
        if not (base and base.group() in ACCOUNT_NAMES or password.lower() in DEFAULT_VALUES and not password.isalpha()):
            continue                                  # 'the SYS account with change_on_install': any user
        digits = DIGITS.fullmatch(password) and 4 <= len(password) <= 8 and not CODE_YEAR.fullmatch(password) and \
            not FOLLOWING_WORD.match(text, m.end())
        if digits or password.lower() == user or password.lower() in DEFAULT_VALUES:
            return password, m.group("user") + " with"
    return None


def default_credential(user, password, account):
    """True if a lower-case user name and password are a vendor's kind of default (DEFAULT_VALUES, TWIN)."""
    if user == password or user in (password + "admin", password + "adm"):     # 'nagiosadmin / nagios' too
        return bool(TWIN.fullmatch(password)) and password not in SLOT_WORDS
    if len(user) >= 4 and user.isalpha() and USER_SUFFIX.fullmatch(password[len(user):]) and password.startswith(user):
        return True                                   # 'field' / 'field123', 'debug/Debug@888'

    return password in DEFAULT_VALUES or account and user not in ("user", "users") and password in ACCOUNT_DEFAULTS


ASCII_DIGIT = re.compile("[0-9]")


def code_number(text):
    """A code's number in a clause, as (number, name), or None: after a door's, lock's, safe's or alarm's name
    (named_code_number), after a code's generic name in any language (generic_code_number), typed on a keypad
    (KEYED), or spelled out after either ('door: two-eight-zero-six'; SPELLED_DIGITS); a code's name abbreviated
    ('κωδ.', 'cód.': CODE_ABBREVIATION) is one."""
    text = PHONE.sub(lambda m: " " * len(m.group()), text) if "+" in text else text    # '+44 161 555 0199'
    text = CJK_DIGITS.sub(" ", schedule_blanked(phone_blanked(CODE_ABBREVIATION.sub(r"\g<name> ", text))))
    for clause in CODE_CLAUSE_END.split(text):
        found = ASCII_DIGIT.search(clause) and (named_code_number(clause) or generic_code_number(clause) or
                                                keyed_number(clause))
        if found:
            return found
        if not SPELLED_DIGITS.search(clause):         # the names are sought only where a number is (linear, but slow)
            continue
        name = CODE_WORD.search(clause) or GENERIC_CODE.search(clause) or ALARM_NAME.search(clause)
        spelled = name and SPELLED_DIGITS.search(clause, name.end())
        if spelled:
            return spelled.group(), name.group()
    return keyed_digits(text)


BINARY_DIGITS = re.compile(r"[01]+")          # 'code 0110100110', a remote's switches: no phone number


def phone_blanked(text, cued_only=False):
    """The text with each phone number written the national way blank (CUED_PHONE; ZERO_PHONE unless `cued_only`)."""
    for phone in (CUED_PHONE,) if cued_only else (CUED_PHONE, ZERO_PHONE):
        text = phone.sub(lambda m: m.group()[:m.start("number") - m.start()] + " " * len(m.group("number"))
                         if PHONE_DIGITS <= sum(c.isdigit() for c in m.group("number")) <= PHONE_DIGITS_MAX and
                         not BINARY_DIGITS.fullmatch(m.group("number")) else m.group(), text)
    return EXTENSION.sub(number_blanked, text)


def number_blanked(m):
    """A match's text with its number (the group 'number') blank."""
    return m.group()[:m.start("number") - m.start()] + " " * len(m.group("number")) + m.group()[m.end("number") - m.start():]


def schedule_blanked(text):
    """The text with a meeting's ID, a Polish tax number, postal codes and opening hours blank (MEETING_ID, NIP_TAX,
    POSTCODE, POSTCODE_TOWN, POSTAL_PIN and SIX_DIGITS; CLOCK_TIMES, OPEN_HOURS)."""
    text = NIP_TAX.sub(number_blanked, MEETING_ID.sub(number_blanked, text))
    text = POSTCODE_TOWN.sub(lambda m: " " * len(m.group()), POSTCODE.sub(lambda m: " " * len(m.group()), text))
    if POSTAL_PIN.search(text):                       # 'PIN code of Pune site is 411057, Chennai site 600032'
        text = SIX_DIGITS.sub(lambda m: " " * len(m.group()), text)
    text = CLOCK_TIMES.sub(lambda m: " " * len(m.group()), text) if ":" in text else text
    return OPEN_HOURS.sub(lambda m: " " * len(m.group()), text) if HOURS_WORD.search(text) else text


def keyed_digits(text):
    """Four to eight single digits apart by spaces in a text that names an intruder alarm in any language, a door, a gate
    or a lock (SPACED_DIGITS, KEYPAD_PLACE: 'Einbruchmeldeanlage … unscharf schalten mit 7 3 0 9', 'Entry pin 0 4 2 7
    for the side door'), as (digits, name), or None."""
    digits = SPACED_DIGITS.search(text)
    counted = digits and all(int(b) - int(a) == 1 for a, b in zip(digits.group()[::2], digits.group()[2::2]))
    name = digits and not counted and (KEYPAD_PLACE.search(text) or                 # not '1 2 3 4', a count
                                       not CODE_KIND.search(text) and GENERIC_CODE.search(text))
    return (digits.group(), name.group()) if name else None


OPENS = re.compile(r"opens|unlocks", re.I)       # 'Version 2024 opens the file': a year, no code


def keyed_number(clause):
    """A number typed on a keypad or given to acknowledge an alarm (KEYED), or pressed or entered near a keypad's place
    (PRESSED, ENTERED, KEYPAD_PLACE), as (number, name), or None."""
    m = next((m for keyed in KEYED for m in keyed.finditer(clause) if not (CODE_YEAR.fullmatch(m.group("number")) and
                                                                          OPENS.match(m.group("name")))), None) or \
        (KEYPAD_PLACE.search(clause) and next((m for pressed in (PRESSED, ENTERED) for m in pressed.finditer(clause)
                                                 if not CODE_YEAR.fullmatch(m.group("number"))), None))
    return (m.group("number"), m.group("name")) if m else None


def named_code_number(clause):
    """A number after the first CODE_WORD of a clause but a bare 'code' (none after 'Code' where a word says what kind:
    CODE_KIND), or after an alarm's name and a verb that switches it off (ALARM_OFF): code_number_after()."""
    word = next((word for word in CODE_WORD.finditer(clause) if word.group() not in ("code", "codes")), None)
    if word and (word.group().lower() == "lock" and CLOCK_LOCK.search(clause, max(0, word.start() - 12), word.start()) or
                 (word.group().lower().endswith("codes") or ALARM_NAME.fullmatch(word.group())) and
                 len(CODE_NUMBER.findall(clause, word.end())) > 1):
        word = None                                   # 'PTP lock lost', 'Alarm codes 2001, 3011', alarms' IDs listed
    if word and word.group().lower() in ("code", "codes") and \
            CODE_KIND.search(clause, max(0, word.start() - CODE_KIND_REACH), word.end() + CODE_KIND_REACH):
        word = None                                   # 'CPV-Code 32412100'
    alarm = ALARM_OFF.search(clause)
    for at, name in ([(word.end(), word.group())] if word else []) + ([(alarm.end(), alarm.group("alarm"))] if alarm else []):
        number = code_number_after(clause, at)
        if number:
            return number, name
    return None


def code_number_after(clause, at):
    """The first number in a clause from `at` on that reads as a code's, or None: not a year or date, the first of a
    range (CODE_RANGE), nor one a unit follows (CODE_UNIT) or a label or model's letters stand before (CODE_LABEL:
    'room 214'), nor the next in a list after such a one (LIST_GAP); one typed with '#' or '*' always; turns of a dial
    (DIAL) too."""
    dial = DIAL.search(clause, at)
    if dial:
        return dial.group()
    listed = None
    for m in CODE_NUMBER.finditer(clause, at):
        digits = NUMBER.findall(m.group())
        if m.group()[-1] not in "#*" and (len(digits) == 1 and CODE_YEAR.fullmatch(digits[0]) or
                                          CODE_DATE.fullmatch(m.group()) or in_range(clause, m) or
                                          number_range(m.group()) or
                                          UPPER_DESIGNATION.search(clause, max(at, m.start() - CODE_LABEL_REACH), m.start()) or
                                          model_named(clause, at, m)):
            continue
        if m.group()[-1] in "#*" or not (CODE_UNIT.match(clause, m.end()) or
                                          CODE_LABEL.search(clause, max(at, m.start() - CODE_LABEL_REACH), m.start()) or
                                          listed is not None and LIST_GAP.fullmatch(clause, listed, m.start())):
            return m.group()
        listed = m.end()                              # 'serial numbers 0427, 0428': the next in the list is one too
    return None


def model_named(clause, at, m):
    """True if a model's name stands between `at` and the number `m` in a clause (MODEL_BEFORE: 'model Paxton 375-110'),
    or a brand's word before a number with a keypad's letter (BRAND_BEFORE: 'Master Lock 178D')."""
    start = max(at, m.start() - MODEL_REACH)
    return bool(MODEL_BEFORE.search(clause, start, m.start()) or
                (m.group()[-1].isalpha() and BRAND_BEFORE.search(clause, start, m.start())))


def generic_code_number(clause):
    """A number a verb gives a code's generic name (CODE_IS), or that follows it after ':' (an English 'code';
    CODE_COLON) or a few words (another language's; CODE_WORDS_BEFORE), unless a word near the name says what kind
    of code (CODE_KIND) or the number is a year, a date or a quantity."""
    for word in itertools.islice(GENERIC_CODE.finditer(clause), NAMES_JUDGED):
        door = CODE_WORD.match(clause, word.end() + len(clause[word.end():]) - len(clause[word.end():].lstrip()))
        if not door and CODE_KIND.search(clause, max(0, word.start() - CODE_KIND_REACH), word.end() + CODE_KIND_REACH):
            continue
        verb = CODE_IS.search(clause, word.end(), word.end() + CODE_IS_REACH)
        lead = (CODE_COLON if word.group().lower() in ("code", "codes") else CODE_WORDS_BEFORE).match(clause, word.end())
        for at in (verb.end() if verb else None, lead.end() if lead else None):
            m = CODE_NUMBER.match(clause, at) if at is not None else None
            if m and (m.group()[-1] in "#*" or not (CODE_YEAR.fullmatch(m.group()) or CODE_DATE.fullmatch(m.group())
                                                    or CODE_UNIT.match(clause, m.end()) or in_range(clause, m)
                                                    or number_range(m.group()))):
                return m.group(), word.group()
    return None


def number_range(token):
    """True if a token is a range of two numbers of one length and first digit, the second the greater ('3000-3099';
    not 'PUK 1234-5678', a code in two groups)."""
    m = NUMBER_PAIR.fullmatch(token)
    return bool(m) and len(m.group(1)) == len(m.group(2)) and m.group(1)[0] == m.group(2)[0] and m.group(2) > m.group(1)


def in_range(clause, m):
    """True if the number `m` found in a clause begins or ends a range ('7001 to 7999')."""
    return bool(CODE_RANGE.match(clause, m.end()) or
                CODE_RANGE_BEFORE.search(clause, max(0, m.start() - CODE_RANGE_REACH), m.start()))


def series(text):
    """The tokens of a text that name members of a series: a name joined to a number that stands again with
    another number ('admin01 to admin05', 'core-srv1 and core-srv2'; SERIES_MEMBER)."""
    numbers = collections.defaultdict(set)
    for raw in NON_SPACE.findall(text):
        m = SERIES_MEMBER.fullmatch(raw.strip(SECRET_VALUE_EDGES))
        if m:
            numbers[m.group("name").lower()].add(m.group("number"))
    return {m.group() for m in map(SERIES_MEMBER.fullmatch, (raw.strip(SECRET_VALUE_EDGES) for raw in NON_SPACE.findall(text)))
            if m and len(numbers[m.group("name").lower()]) > 1}


def password_shaped(text):
    """The first token of a text already scanned that is shaped like a password (see STRONG_LENGTH), or ''; the
    pieces of a token joined by '/' or '@' judged apart ('scott/Tiger#2024@orcl'); not a URL (its password is
    judged by url_password), e-mail address, placeholder or identifier of NOT_BASE64."""
    if "SHA256:" in text or "SPDXRef-" in text or "Change-Id:" in text:
        text = NOT_BASE64.sub(" ", text)
    text = text if text.isascii() else SCRIPT_BOUNDARY.sub(" ", text)     # '無線2名、Python開発者3名'
    raws = NON_SPACE.findall(KEY_VALUE.sub(" ", URL.sub(" ", text) if "://" in text else text))
    raws = [piece for raw in raws for piece in (SLASH_AT.split(raw) if "/" in raw else (raw,))]
    members = None
    for raw in dict.fromkeys(raws):                   # each token once, in order
        token = raw.strip(SECRET_VALUE_EDGES)
        if token.isalpha():                           # each shape below needs a digit or a symbol
            continue
        members = series(text) if members is None and SERIES_MEMBER.fullmatch(token) else members
        if len(token) < SECRET_VALUE_LENGTH or EMAIL.fullmatch(token) or (members and token in members) or \
                VALUE_PLACEHOLDER.fullmatch(raw.strip(PLACEHOLDER_EDGES)):
            continue
        digits = sum("0" <= c <= "9" for c in token)
        if weak_password(token) and (WEAK_SYMBOL.search(token) or digits >= WEAK_DIGITS_MIN):
            return token
        if digits >= KEY_DIGITS_MIN and DIGIT_GROUPS.fullmatch(token) and not number_range(token):
            return token                              # a key as groups of digits ('418231-530112-...')
        if GROUPED_KEY.fullmatch(token) and sum(bool(MIXED_GROUP.fullmatch(g)) for g in token.split("-")) >= 2:
            return token                              # a licence key or token in groups ('HWS-8842-KQ7T-ZZ91-PLM4')
        prefixed = PREFIXED_TOKEN.fullmatch(token)      # an API token after its issuer's prefix ('nl_9Qx4Lm7Rt2Vb8Kz')
        if prefixed and LOWER.search(prefixed.group("rest")) and UPPER.search(prefixed.group("rest")) and \
                len(LETTER_DIGIT_CHANGES.findall(prefixed.group("rest"))) >= STRONG_CHANGES:
            return token
        if PASSPHRASE.fullmatch(token) and all(word[0].isupper() and word[1:].islower()
                                               for word in re.findall(r"[^\W\d_]+", token)):
            return token
        if len(token) >= STRONG_LENGTH and LOWER.search(token) and UPPER.search(token) and DIGIT.search(token) and \
                (STRONG_SYMBOL.search(token) or TRAILING_BANG.search(raw) or
                 (len(LETTER_DIGIT_CHANGES.findall(token)) >= STRONG_CHANGES and not SEPARATED.search(token))):
            return token
    return ""


def byte_run(text):
    """BYTE_RUN numbers or more in a row that each fit a byte, apart by BYTE_GAP only ('70 91 92 ...',
    '[70,91,92,...]'; BYTE_RUN_DOTTED where a gap holds a dot), as one string, or ''."""
    run, end, dotted = [], -1, False
    for m in NUMBER.finditer(text):
        gap = BYTE_GAP.fullmatch(text, end, m.start()) if run else None
        if not BYTE.fullmatch(m.group()):
            run = []
        else:
            dotted = dotted and bool(gap) or bool(gap and "." in gap.group())
            run = run + [m.group()] if gap else [m.group()]
            if len(run) >= (BYTE_RUN_DOTTED if dotted else BYTE_RUN):
                return " ".join(run)
        end = m.end()
    return ""


def credential_sentences(text):
    """The sentences of a text that name a credential, and the one after a question that does ('omc creds? dan:
    omcadmin + Ternpass44'), or the whole text if it is one sentence: a number in another sentence is no password near
    the name ('Default passwords will be changed. PLMN 001-01, TAC 1-10')."""
    parts = SENTENCE_END.split(text)
    if len(parts) == 1:
        return text
    kept, asked = [], False
    for part in parts:
        named = credential_word(part) or SIM_WORD.search(part) or SIM_KEY_WORD.search(part)
        if named or asked:
            kept.append(part)
        asked = bool(named) and part.rstrip().endswith("?")
    return " ".join(kept)


def context_secret(raw, short=None, strict=False):
    """True if a token near a password's or key's name looks like one (its edges stripped, a URL's or path's pieces
    judged one by one): a number of PASSCODE_DIGITS to PASSCODE_MAX digits, or of KEY_DIGITS_MIN or more, or of
    SIM_DIGITS or more where `short` is 'sim' (a SIM word stands in the text) or 'password' (a password's own word
    does: not a year then); a token of SECRET_VALUE_LENGTH characters or more that mixes letters and digits
    ('Hunter22x', 'Debian12'), holds a symbol of PASSWORD_SYMBOL or one between letters (INNER_SYMBOL,
    MIXED_CASE_JOIN: 'Admin@storage', 'Change_Me'), unless it names something (named_near_credential; see
    NUMBER_PART when `strict`: the value right after a password's own word); not a placeholder
    ('${DB_PASSWORD}'). After a SIM or password word, digits in groups count as one number ('4918-5627'), but
    for a date or an IPv4 address."""
    if VALUE_PLACEHOLDER.fullmatch(raw.strip(PLACEHOLDER_EDGES)):
        return False
    token = raw.strip(SECRET_VALUE_EDGES).rstrip("*#").strip(SECRET_VALUE_EDGES)   # 'auth-2025.*' (a glob), "4711#"
    token = POSSESSIVE.sub("", token)                 # "DEL-15's list": the item's ID
    if token.lower() in SLOT_WORDS:                   # '1Password', a vault's name
        return False
    if SLASHED_DATE.fullmatch(token):                # '12/12/2024'
        return False
    if WINDOWS_PATH.fullmatch(token):                 # a Windows path's pieces ('\\nas01\ops', 'C:\ops\keys')
        return any(context_secret(piece, short, strict) for piece in token.split("\\")[1:] if piece)
    if "/" in token or "://" in token:                # a URL's or path's pieces ('~/keys/amf', 'admin/Zx9kq7Lm')
        start = URL_VALUE.match(token.lower()) or PATH_START.match(token)
        return any(context_secret(piece, short, strict) for piece in URL_PIECES.split(token[start.end() if start else 0:]))
    if DIGITS.fullmatch(token):
        if short and len(token) >= SIM_DIGITS and not (short == "password" and YEAR.fullmatch(token)):
            return True
        return PASSCODE_DIGITS <= len(token) <= PASSCODE_MAX or len(token) >= KEY_DIGITS_MIN
    if not LETTER.search(token) and sum("0" <= c <= "9" for c in token) >= KEY_DIGITS_MIN and not number_range(token):
        return True                                   # a key as groups of digits (a BitLocker recovery key)
    if short and DIGIT_GROUPS.fullmatch(token) and sum("0" <= c <= "9" for c in token) >= SIM_DIGITS and \
            not DATE.fullmatch(token) and not IPV4.fullmatch(token) and not ("." in token and VERSION.fullmatch(token)) and \
            not number_range(token):
        return True
    if len(token) < SECRET_VALUE_LENGTH or named_near_credential(token, strict):
        return False
    return bool(weak_password(token) or PASSWORD_SYMBOL.search(token) or (LETTER.search(token) and DIGIT.search(token))
                or (INNER_SYMBOL.search(token) and not EMAIL.fullmatch(token)) or MIXED_CASE_JOIN.match(token))


def named_near_credential(token, strict=False):
    """True if a token names something near a credential's name: a version, quantity, tool's or scheme's name
    (named_token, scheme_name), a ticket or record ID, a standard's or document's number or a Huawei version
    (STANDARD_NUMBER), an e-mail address, a product (PRODUCT), an identifier or model number, or a quantity after
    its key ('m=64MiB'); never a weak password."""
    if weak_password(token):
        return False
    lower = token.lower()
    return bool(named_token(token) or quantity(token) or UPPER_ID.fullmatch(token) or RECORD_ID.fullmatch(lower) or
                COMPANY.fullmatch(token) or
                scheme_name(lower) or scheme_name(lower + ")" * (lower.count("(") - lower.count(")"))) or
                STANDARD_NUMBER.fullmatch(token) or EMAIL.fullmatch(token) or
                (not (strict and NUMBER_PART.search(token)) and
                 (PRODUCT.fullmatch(token) or identifier(token) or model_number(token))) or
                ("=" in token and quantity(token.rpartition("=")[2])))


def model_number(token):
    """True if a token is a model number: no lower-case letter, and parts apart by '-', '_' or '.' or at most two
    changes between letters and digits ('S5735-L48T4S-A1', 'RM520N-GL', 'CE6881'; not 'K7PQ2XLM9Z')."""
    return not any(c.islower() for c in token) and (bool(SEPARATED.search(token)) or    # in any script ('Атӑл77')
                                                    len(LETTER_DIGIT_CHANGES.findall(token)) <= 2)


def identifier(token):
    """True if a token is an identifier in one letter case (IDENTIFIER_PART): 'svc-amf01', 'ENG_ADMIN_01'; not
    'Summer-2025' (WORD_YEAR) nor 'zx9-kq7-lm4' (three parts mixing letters and digits)."""
    parts = NAME_SEPARATORS.split(token)
    if len(parts) < 2 or not all(IDENTIFIER_PART.fullmatch(part) for part in parts) or WORD_YEAR.fullmatch(token):
        return False
    return sum(bool(LETTER.search(part) and DIGIT.search(part)) for part in parts) <= 2


def judged_label(text):
    """A password or token label in a text already scanned whose value is a password, as (its judged token, the label
    with its separator), or None: SECRET_LABEL's matches are tried first, in text order, then ENV_LABEL's, so
    'PGPASSWORD=K7pQ2xLm9 password: Tr0ub4dor&3' names 'Tr0ub4dor&3', the later token (either is refused); a value
    whose first token is no password is read on for a user name and its password (user_pair), as PAIR_LABEL's are."""
    pairs, members = Pairs(text), None
    for labels in (SECRET_LABEL, ENV_LABEL):
        for m in labels.finditer(text):
            label = text[m.start():m.start("value")]
            token = secret_value(m.group("value"), bool(FOLLOWED_BY_WORDS.match(text, m.end())),
                                 bool(PASSWORD_WORD.search(label))) or pairs.user_pair(m.start("value"))
            members = series(text) if token and members is None else members
            if token and token not in members:
                return token, LABEL_QUOTES.sub("", label).strip()
    for m in PAIR_LABEL.finditer(text):
        token = pairs.user_pair(m.start("value"))
        members = series(text) if token and members is None else members
        if token and token not in members:
            return token, LABEL_QUOTES.sub("", text[m.start():m.start("value")]).strip()
    return None


class Pairs:
    """A text's tokens (NON_SPACE), read once, what user_pair() found after each and how each token was judged, so
    that many labels in one line cost linear time."""

    def __init__(self, text):
        self.text, self.tokens, self.found, self.judged, self.walks = text, None, {}, {}, {}

    def user_pair(self, start):
        """The password after a user name in the value that starts at text[start], or '' (H15-1): of the value's
        first PAIR_WALK tokens, one that is a plain user name (USER_NAME) is followed by a token judged as a password
        (secret_value), after a separator ('/', ',', ':', '-', '(' or 'and', alone or glued: 'admin / X', 'root, X',
        'admin/Changeme_123', the part after it judged whole, unless it holds a '/' itself, as a path does) or after a
        space, unless a plain lower-case word follows ('admin account disabled'); after a space, a name joined to
        numbers is taken as a name ('test-UE1 to test-UE10'), as when words follow it."""
        if start in self.walks:                                     # a value two labels share ('credentials:')
            return self.walks[start]
        self.walks[start] = self.walk(start)
        return self.walks[start]

    def walk(self, start):
        """user_pair(), the first time for its start."""
        if self.tokens is None:
            self.tokens = [(m.start(), m.end()) for m in NON_SPACE.finditer(self.text)]
            self.starts = [a for a, _ in self.tokens]
        k = bisect.bisect_right(self.starts, start) - 1             # the token that holds text[start]
        if k < 0 or self.tokens[k][1] <= start:
            k += 1
        for n in range(PAIR_WALK):
            if k + n >= len(self.tokens):
                break
            at = max(start, self.tokens[k + n][0])
            if at not in self.found:
                self.found[at] = self.pair_at(self.text[at:self.tokens[k + n][1]], k + n + 1)
            if self.found[at]:
                return self.found[at]
        return ""

    def pair_at(self, tok, after):
        """The password that follows `tok`, a user name, from the token at index `after` on, or '' (none after a word that
        points: POINTING_WORDS, 'in 1Password')."""
        if tok.lower() in POINTING_WORDS:
            return ""
        word = lambda i: self.text[self.tokens[i][0]:self.tokens[i][1]] if i < len(self.tokens) else None
        glued, spaced, nxt = USER_GLUED.fullmatch(tok), False, word(after)
        if glued and glued.group("rest"):
            if "/" in glued.group("rest"):                        # a path or URL ('configs/open5gs/amf.yaml')
                return ""
            candidate, at = glued.group("rest"), after - 1
        elif glued and nxt is not None:
            candidate, at = nxt, after
        elif USER_NAME.fullmatch(tok) and nxt is not None:
            if PAIR_SEPARATOR.fullmatch(nxt):
                candidate, at = word(after + 1), after + 1
                if candidate is None:
                    return ""
            elif PLAIN_WORD.fullmatch(nxt.strip(SECRET_VALUE_EDGES)):
                return ""
            else:                                                  # after a space, a name joined to numbers is a name
                candidate, at, spaced = nxt, after, True
        else:
            return ""
        if len(candidate) < SECRET_VALUE_LENGTH:                   # too short to be judged (secret_value)
            return ""
        followed = spaced or any(LETTER_OR_DIGIT.search(word(i)) for i in range(at + 1, min(at + 3, len(self.tokens))))
        if (candidate, followed) not in self.judged:               # the same token again ('credential=x' ...)
            self.judged[candidate, followed] = secret_value(candidate, followed)
        return self.judged[candidate, followed]


def address_password(m):
    """True if an ADDRESS_PASSWORD match holds a password: its user is no scheme, and not both parts are numbers."""
    user, password = m.group("user"), m.group("password")
    return user.lower() not in ADDRESS_SCHEMES and not (DIGITS.fullmatch(user) and DIGITS.fullmatch(password))


def secret_value(value, followed=False, password_label=False):
    """The value after a password or token label (a SECRET_LABEL or ENV_LABEL match's) if it is a password: its first
    token, as judged (cut at an en or em dash as at whitespace, without quotes, brackets and end punctuation), else ''.
    Words after the token do not make it a description ('K7#pQ2!xLm9 until go-live' is a password), but for a name
    joined to numbers (described_name: 'credentials: srsRAN_4G defaults'). The token is no password either when
    shorter than SECRET_VALUE_LENGTH, a URL or path (a bare '/X' is judged as X), a quantity ('90-days'), a ticket or
    record ID ('OPS-1234', 'ticket-4711'), names of schemes (scheme_name: '802.1X', 'bcrypt(12)'), or made of parts
    (between '-', '_', '.', '/', ':', '@', '#', '?', '=', '&', '+', ',' and ';') that are each a word of letters in
    any script, in one letter case or camelCase, or a number (word_part: 'verschlüsselt', 'SEC-10', 'kv/prod/amf'),
    but not a word glued to a number (WORD_NUMBER: 'Welcome-2024') nor a number alone ('passcode: 84729135')."""
    cut = [t for t in TOKEN_DASHES.split(value) if t]
    first = cut[0] if cut else ""
    followed = followed or any(LETTER_OR_DIGIT.search(t) for t in cut[1:])
    if VALUE_PLACEHOLDER.fullmatch(first.strip(PLACEHOLDER_EDGES)):
        return ""
    token = first.strip(SECRET_VALUE_EDGES)
    if weak_password(token):
        return token
    if named_token(token) or described_name(token, followed, password_label):
        return ""
    start = PATH_START.match(token)
    if start:
        if PATH_AFTER_START.fullmatch(token, start.end()):
            return ""
        token = token[start.end():]
    lower = token.lower()
    if len(token) < SECRET_VALUE_LENGTH or URL_VALUE.match(lower) or PATH_WITHOUT_START.fullmatch(token) or \
            quantity(token) or upper_name(token) or RECORD_ID.fullmatch(lower) or scheme_name(lower):
        return ""
    if WORD_NUMBER.fullmatch(token) or DIGITS.fullmatch(token):
        return token
    return "" if all(word_part(part) for part in SECRET_VALUE_PARTS.split(token) if part) else token


def upper_name(token):
    """True if a token in capitals and digits names something (UPPER_ID; KNOWN_UPPER: 'SHA256', 'RFC7519'; a ticket's:
    'INC0012345'; one with '-' or '_': 'FSK-03'), not a password in capitals ('HERO99')."""
    m = UPPER_ID.fullmatch(token)
    return bool(m) and (re.match("[A-Z]+", token).group().lower() in KNOWN_UPPER or len(re.sub("[^0-9]", "", token)) >= 5
                        or "-" in token or "_" in token)          # 'FSK-03', a key's ID


def weak_password(token):
    """True if a token is a common weak password (WEAK_PASSWORD: 'Password1', 'Admin123', 'SUMMER2024', 'P@ssw0rd'):
    a word of WEAK_WORDS with digits, or spelled with look-alikes; at least SECRET_VALUE_LENGTH characters."""
    return len(token) >= SECRET_VALUE_LENGTH and not token.isalpha() and bool(WEAK_PASSWORD.fullmatch(token))


def described_name(token, followed, password_label):
    """True if a token followed by words on its line (followed, or words after the dash that cut it) is a name joined
    to numbers (name_number: 'credentials: srsRAN_4G defaults'). After a password's own label (password_label:
    PASSWORD_WORD) a word glued to a number ('password: Welcome-2024, rotated yearly') and a token without separators
    ('password: Hunter22x for the WebUI', 'PSK: Welcome2024 on the guest SSID') stay judged: such names are taken
    only after descriptive labels (credentials, token, secret, key)."""
    if not followed or not name_number(token) or WORD_YEAR.fullmatch(token):
        return False
    return not (password_label and (WORD_NUMBER.fullmatch(token) or not NAME_SEPARATORS.search(token)))


def name_number(token):
    """True if a token is a name joined to numbers (NAME_SEPARATORS, NAME_PART, UPPER_NUMBER): 'srsRAN_4G',
    'PCI-DSS4.0', 'Q3-2025'; not 'K7pQ2xLm9', 'Ki7q-Sp4x.Ts9z', 'K7#pQ2!xLm9'."""
    parts = [part for part in NAME_SEPARATORS.split(token) if part]
    if not parts or not all(NAME_PART.fullmatch(part) for part in parts) or not DIGITS.search(token):
        return False
    if len(LETTER_DIGIT_CHANGE.findall("".join(parts))) > 3:
        return False
    letters = sum(c.isalpha() for c in token)
    return (letters >= 3 and bool(VOWEL.search(token))) or any(UPPER_NUMBER.fullmatch(part) for part in parts)


def named_token(token):
    """True if a token (a value's first) is a version or 3GPP release ('v1.15.2', 'Rel-17'), a quantity ('5GHz-only',
    'TTL=15min'), a stack's or tool's name, alone or with its dotted version (TOOL_NAME, TOOL_VERSION: 'Open5GS',
    'Open5GS-2.7.1'), or names of schemes or tools (scheme_name) joined by '/' or '+' ('JWT/RS256', 'Ki/OPc')."""
    lower = token.lower()
    if VERSION.fullmatch(lower) or quantity(token) or TOOL_NAME.fullmatch(lower) or TOOL_VERSION.fullmatch(lower):
        return True
    pieces = NAME_JOIN.split(lower)
    return len(pieces) > 1 and all(piece and (TOOL_NAME.fullmatch(piece) or scheme_name(piece)) for piece in pieces)


def quantity(token):
    """True if a token is a quantity (QUANTITY: '90-days', '1h/24h'), alone or after QUANTITY_KEY ('TTL=15min')."""
    key = QUANTITY_KEY.match(token)
    return bool(QUANTITY.fullmatch(token[key.end():].lower() if key else token.lower()))


def scheme_name(value):
    """True if a value in lower case is names of schemes joined to numbers or words that describe them
    (SCHEME_TOKENS), with one name at least: 'pbkdf2-hmac-sha256', 'eap-tls1.3', 'x.509v3'."""
    pos, named = 0, False
    while pos < len(value):
        for token, name in SCHEME_TOKENS:
            m = token.match(value, pos)
            if m:
                break
        else:
            return False
        pos, named = m.end(), named or name
    return named


def word_part(part):
    """True if a part of a value is a number, or a word of letters in any script in one letter case ('changed',
    'Sites', 'SEC', 'geändert', '密码') or camelCase with vowels ('kubernetesSecretName')."""
    if DIGITS.fullmatch(part):
        return True
    if not part.isalpha():
        return False
    if not any(c.isupper() for c in part[1:]) or not any(c.islower() for c in part):
        return True
    return bool(CAMEL.fullmatch(part)) and voweled(part)


def url_password(m):
    """The password of a URL ('https://user:password@host/'), or ''."""
    userinfo = m.group("authority").rpartition("@")[0]
    return userinfo.partition(":")[2]


def url_values(m):
    """A URL as the base64 scan reads it: its user and password, the labels of its host written in both
    letter cases (a name is written in one; base64 is not), the segments of its path that end in '=' (padded
    base64), its query values and its fragment; not its scheme, the rest of its host, or the rest of its path."""
    userinfo, _, host = m.group("authority").rpartition("@")
    labels = [label for label in host.split(".") if re.search("[a-z]", label) and re.search("[A-Z]", label)]
    padded = [segment for segment in m.group("path").split("/") if segment.endswith("=")]
    query = [p.partition("=")[2] or p for p in re.split(r"[?&;#]", m.group("rest"))]
    return " " + " ".join(userinfo.split(":") + labels + padded + query) + " "
