"""Test support for tools/checklist.py: a registry and runner, fixture helpers, and ways to run
the program (in-process, as most tests do, or as a real subprocess). Standard library only."""
import contextlib
import functools
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tools"))
import checklist as cl  # noqa: E402


# Temporary folders in memory where the machine has them: the tests make hundreds, and a disk makes each slow
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
    tempfile.tempdir = "/dev/shm"

FIXTURE = (HERE / "fixture.md").read_text(encoding="utf-8")
README = ROOT / "README.md"
PROGRAM = str(ROOT / "tools" / "checklist.py")
TESTS = []
# The eighth hostile-input review: answers after a password label that are no password (N5), and made-up passwords
# after their label (N3); test_answers.py and test_form.py's parity corpus use them
N5_ACCEPTED = ("passwords: SHA256-hashed and salted", "passwords: argon2id", "tokens: OAuth2 client credentials",
               "secrets: AES256 in the HSM", "Wi-Fi password: WPA3-SAE only", "tokens: 5G-AKA", "pwd: /opt/open5gs/etc",
               "password: PBKDF2-hashed, set at install", "password: none (certificate login only)",
               "passwords: set by the operator at first login", "token: see vault entry 2026-17",
               "passwords: argon2id, rotated yearly", "tokens: OAuth2 client credentials (RFC 6749)",
               "secrets: AES256 in the HSM, never exported", "tokens: 5G-AKA and EAP-AKA' per TS 33.501",
               "gNB v2.1: admin over SSH, password: PBKDF2-hashed, set at install", "secrets: AES256",
               "password: SHA-256-hashed", "PSK: WPA2-PSK only", "credentials: X509 client certificates",
               "passphrase: argon2id-protected", "credentials: admin over SSH, keys only")
N3_REFUSED = ("password: Tr0ub4dor&3", "DB_PASSWORD=hunter22", "API token: 3f9a1c2e7b", "admin password: Welcome-2024",
              "root password: Summer_2024!", "login admin, pw: Tr0ub4dor&3xyz", "PSK: Tr0ub4dor&3xyz",
              "passcode: 84729135", "passphrase: Welcome-2024", "credentials: Tr0ub4dor&3xyz", "Passwort: Tr0ub4dor&3xyz",
              "Kennwort: Sommer-2024", "mot de passe: Tr0ub4dor&3xyz", "contrase\u00f1a: Tr0ub4dor&3xyz",
              "senha: Tr0ub4dor&3xyz", "admin password - Tr0ub4dor&3xyz", "password = Tr0ub4dor&3xyz",
              "password: Tr0ub4dor&3xyz (rotated yearly)", "password: Welcome-2024, rotated yearly")
# The ninth: a labelled password followed by more words (H9-1), and quantities, words in any script, and names of
# standards, protocols and schemes or ticket IDs after a label (H9-2, H9-3, H9-4)
H9_REFUSED = ("root password: K7#pQ2!xLm9 until go-live", "root password: K7#pQ2!xLm9 - change at first login",
              "password: Tr0ub4dor&3xyz\u2014rotate monthly", "password: Tr0ub4dor&3xyz \u2013 rotate monthly",
              "admin password: Tr0ub4dor&3xyz and user admin", "password = 'Tr0ub4dor&3xyz' for now",
              "Wi-Fi PSK: Tr0ub4dor&3xyz for the lab SSID", "password: /Tr0ub4dor&3xyz", "pwd: ./K7#pQ2!xLm9 (old)",
              "passcode: 84729135 until May", "Kennwort: Sommer-2024 bis Juni", "token: Zz9-Qq8-Ww7 \u2014 see vault",
              "password: Summer2024", "credentials: 2024-Welcome")
H9_ACCEPTED = ("passwords: 90-days", "passcode: 6-digits", "passwords: 12-characters", "tokens: 24-hours",
               "token: 60-min", "pw: 12+chars", "credentials: ticket-4711", "Passwort: 12-stellig",
               "Passwort: verschl\u00fcsselt", "Passwort: ge\u00e4ndert", "Kennwort: zur\u00fcckgesetzt",
               "mot de passe : r\u00e9initialis\u00e9", "mot de passe: chiffr\u00e9", "password: \u00e4nderbar",
               "credentials: 802.1X", "credentials: X.509v3", "credentials: TPM2.0", "credentials: PKCS12",
               "credentials: 3GPP-AKA", "credentials: OAuth2.1", "credentials: EAP-TLS1.3", "credentials: IKEv2-PSK",
               "credentials: FIDO2-keys", "credentials: Ed25519-SK", "credentials: INC0012345", "PSK: 802.11r",
               "contrase\u00f1a: Kerberos5", "passwords: PBKDF2-HMAC-SHA256",
               "passwords: PBKDF2-HMAC-SHA256, 600k iterations", "secrets: ChaCha20-Poly1305", "passwords: sha512crypt",
               "passwords: bcrypt(12)", "tokens: JWT-RS256", "tokens: TS33.501", "secrets: Vault1.15",
               "token: Base64URL", "tokens: YubiKey-5C", "password: NIST800-63B", "password: min12chars",
               "secret: Release17", "token: JIRA-4711", "token: CHG0034567", "token: OPS-20260114-0042",
               "pwd: configs/open5gs/amf.yaml", "pwd: ~/keys/amf", "passwords: set \u2014 see the runbook",
               "secret: \u5bc6\u7801\u5df2\u8bbe\u7f6e", "credentials: per-user", "psk: per-SSID")
# The tenth: ordinary answers after a label that round 9 recorded (H10-1), names joined by '/' or '+', quantities
# with units, tool names (part of H10-2), and edges of the new rules that stay refused
H10_ACCEPTED = ('PSK: 5GHz-only SSID, WPA3-SAE', 'password: ${AMF_DB_PASSWORD} from the sealed secret',
                'credentials: v2.3.1 of the provisioning tool', "credentials: 5G-AKA/EAP-AKA' per TS 33.501",
                'credentials: Ki/OPc in the HSM, never exported', 'credentials: 1.2.3-rc1 tooling',
                'credentials: Rel-17 USIM', 'credentials: Open5GS defaults changed at install',
                'secrets: Open5GS WebUI, changed at install', 'credentials: Rel-17 SIMs',
                'tokens: Rel-16 SBA OAuth2', 'secrets: v1.15.2 of Vault', 'tokens: JWT/RS256, 15-minute expiry',
                'credentials: 802.1X/EAP-TLS', 'tokens: 802.1X/EAP-TLS', 'credentials: Ki/OPc', 'secrets: Ki/OPc',
                "credentials: 5G-AKA/EAP-AKA'", "tokens: 5G-AKA/EAP-AKA'", 'tokens: 1h/24h (access/refresh)',
                'token: TTL=15min', 'PSK: 3.5GHz', 'secrets: 100MHz', 'credentials: v2.3.1', 'secret: Rel-17',
                'token: R17 USIM', 'secrets: 1.15.2', 'token: 2.2.1-rc1 build', 'password: $DB_PASSWORD',
                'password: %AMF_PASSWORD%', 'secrets: Kubernetes-managed',
                'tokens: Keycloak', 'secrets: UERANSIM-3.2.6', 'tokens: OCUDU', 'secret: pycrate',
                'secret: Ansible-Vault')   # 'credentials: admin / Tr0ub4dor&3xyz' is judged since H15-1
# The eleventh hostile-input round: 'credentials' is judged as 'password' whatever follows (H11-1); a stack's or
# tool's name glued to digits or symbols, a version with a major of 4 digits, a quantity after a lower-case key
# (H11-2) and a placeholder whose name holds digits not after '_' (H11-3) are judged: all refused. The tool-name
# forms accepted in round 10 (Kyber768 ... OpenAirInterface5G) are judged now too, except a name with its dotted
# version ('Open5GS-2.7.1', 'Magma1.8')
H11_REFUSED = ('credentials: K7#pQ2!xLm9 until go-live', 'credential: K7#pQ2!xLm9 for the AMF',
               'DB_CREDENTIALS=K7#pQ2!xLm9 in prod', 'credentials: admin/K7#pQ2!xLm9 on the WebUI',
               'credentials: Tr0ub4dor&3xyz (rotate monthly)',
               'credentials: K7#pQ2!xLm9 \u2014 change at first login', 'credentials: K7#pQ2!xLm9. Rotate.',
               'credentials: K7#pQ2!xLm9\u3000x', 'credentials: Tr0ub4dor&3xyz (old)', 'password: Open5GS-2024',
               'password: Magma2024', 'password: Kubernetes1!', 'password: Falcon-99', 'psk: Dilithium5',
               'password: Ki7q-Sp4x.Ts9z', 'password: rel17x-sk42q', 'password: v8472.91', 'password: hunter=15min',
               'password: Open5GS2024!', 'password: ki2024', 'password: $HUNTER22', 'password: ${K7pQ2xLm9}',
               'password: {{K7pQ2xLm9}}', 'password: %K7PQ2XLM9Z%', 'password: {{db_pass1}}', 'secret: SoftHSM2',
               'secret: OpenAirInterface5G')
H11_ACCEPTED = ('credentials: Open5GS defaults changed at install', 'credentials: OpenSSL3.0 FIPS provider',
                'credentials: Open5GS-2.7.1 defaults', 'tokens: OpenSSL3.0', 'secret: free5GC-v3.4',
                'secret: Magma1.8', 'credentials: Rel-17 SIMs',
                'credentials: Ki/OPc in the HSM, never exported', "credentials: 5G-AKA/EAP-AKA' per TS 33.501",
                'token: TTL=15min', 'password: ${AMF_DB_PASSWORD}', 'password: $VAR', 'password: {{ var }}',
                'password: %VAR%', 'password: {{db_pass_1}}', 'password: $DB_PASSWORD_2', 'credentials: Magma',
                'secrets: Kubernetes/Vault', 'token: v2.3.1',
                # refused in round 11, recorded since H12-1: a name joined to a number, followed by words
                'credentials: Kyber768 hybrid with X25519', "credentials: Keycloak24 realm 'lab'",
                'secrets: Dilithium3 signatures (PQC trial)', 'credentials: srsRAN_4G defaults',
                'credentials: OAI-5G defaults', 'secrets: K8s-native, sealed with SOPS')
# H11-6: 'pass', ' is ', '->' and '=>' label a password too
H11_6_REFUSED = ("pass: K7#pQ2!xLm9", "user=admin pass=K7#pQ2!xLm9", "the password is K7#pQ2!xLm9",
                 "password -> K7#pQ2!xLm9", "password => K7#pQ2!xLm9", "the password is: Welcome-2024",
                 "PASS=hunter22", "API token is 3f9a1c2e7b")
H11_6_ACCEPTED = ("the password is stored in Vault",
                  "token is rotated every 90 days", "pass: 3 of 4 tests",
                  "the credential is set, see OPS-1234", "password -> see the runbook")
H10_REFUSED = ("credentials: Tr0ub4dor&3xyz, rotated", "credentials: Tr0ub4dor&3xyz;",
               "password: $ecretPass1", "password: ${DB:-K7#pQ2!xLm9}", "password: Welcome-2024s",
               "password: jwt/Xk9pQ2", "password: sha256/Welcome2024", "password: Open5GS-Xk9pQ",
               "password: 1.2.3-K7pQ2", "token: TTL=K7pQ2xLm9", "password: 5GHz-K7pQ2xLm9", "password: %Tr0ub4dor%x")
# The twelfth hostile-input round. H12-1: after a label, a first token followed by words on its line is a name when
# it joins a name to numbers ('srsRAN_4G defaults'); symbols other than '-', '_', '.', or letters and digits
# interleaved more than twice, stay judged, and so does a word glued to a number after a password's own label
# ('password: Welcome-2024, rotated yearly') or one that stands alone ('credentials: Welcome-2024.')
H12_NAMES = ('credentials: srsRAN_4G defaults', 'credentials: SoftHSM2 tokens', 'credentials: MongoDB6 users',
             'credentials: Ubuntu22.04 images', 'credentials: ISO27001-aligned controls',
             'credentials: PostgreSQL16 roles', 'credentials: K8s-Secrets, encrypted at rest',
             'credentials: test-UE1 to test-UE10', 'credentials: gNB-DU1 certificates',
             'credentials: Q3-2025 rotation', 'credentials: H2-2025 review', 'credentials: PCI-DSS4.0 audit',
             'credentials: Wi-Fi6 WPA3-Enterprise', 'credentials: SOC2-Type2 controls',
             'credentials: IEC62443-certified units', 'token: RFC7519-JWTs from the NRF',
             'secrets: sysmoISIM-SJA5 cards', 'password: 2FA-protected accounts',
             'token: exp=15min tokens', 'credentials: OAI-2024.w10 defaults',
             'credentials: Open5GS-WebUI defaults changed', 'credentials: Debian12 cloud image',
             'credentials: srsRAN_4G\u2014defaults')
H12_STILL_JUDGED = ('credentials: K7#pQ2!xLm9 rotated monthly', 'credentials: Tr0ub4dor&3xyz rotated',
                    'credentials: K7pQ2xLm9 rotated monthly', 'credentials: K7pQ2xLm9', 'password: Ki7q-Sp4x.Ts9z now',
                    'password: Welcome-2024, rotated yearly', 'credentials: Welcome-2024.', 'password: Welcome-2024',
                    'token: Xk7-Pq2 for the NRF', 'credentials: srsRAN_4G', 'password: 2FA-protected')
# H12-2: a label in quotes, an upper-case environment name ending in PASS, PASSWORD, PASSWD, PWD, TOKEN or SECRET
H12_LABELS = ('"password": "K7#pQ2!xLm9"', "'token' = 'K7#pQ2!xLm9'", '{"db_password": "K7pQ2xLm9"}',
              'PGPASSWORD=K7pQ2xLm9', 'DBPASS=K7pQ2xLm9', 'REDIS_PWD=K7pQ2xLm9', 'GITHUBTOKEN=K7pQ2xLm9',
              'APPSECRET: K7pQ2xLm9')
H12_NOT_LABELS = ('Pgpassword=see the runbook', 'DBPASS=ticket-4711')
# H12-3: SIM codes after their labels; H12-5: a '%NAME%' placeholder is not percent-decoded
H12_SIM_REFUSED = ('ADM1: 84729135', 'PUK: 84729135', 'PIN1=1234', 'PIN1=1234, PUK1=84729135',
                   'OTA key: 465B5CE8B199B49F', 'adm: 3838383838383838', 'KIc = 0123456789abcdef', 'pin2 is 0000')
H12_SIM_ACCEPTED = ('PIN code policy: 4 digits', 'PIN: not used', 'PUK: on the card carrier', 'pin: 123',
                    'spin: 84729135', 'OTA key: kept by the vendor')
H12_PLACEHOLDERS = ('password: %DB_PASSWORD%', 'password: %AMF_PASSWORD%', 'token: %API_TOKEN%')
# Code review 127. B2: after a password's own label ('password', 'pwd', 'passphrase',
# 'passcode', 'PSK'), a token without separators stays judged when words follow (a name joined to a number is taken
# only after descriptive labels: credentials, token, secret, key); B3: a SIM code is cut at an en or em dash; B4: KIc,
# KID, KIK and 'OTA key' take 16 hex digits or more only, and a bare 'pass' labels only before ':' or '='
R13_PASSWORDS = ('password: Hunter22x for the WebUI', 'PSK: Welcome2024 on the guest SSID',
                 'pwd: Welcome2024 rotated yearly', 'passphrase: Hunter22x, see the runbook',
                 'PGPASSWORD=Welcome2024 for staging', 'pass: Hunter22x for now')
R13_SIM_REFUSED = ('PUK: 84729135\u2014keep it safe', 'ADM1: 84729135\u2013rotated', 'PIN1=1234\u2014card 2',
                   'KIc: 0123456789ABCDEF\u2014slot 1', 'OTA key: 465B5CE8B199B49F\u2013vendor')
R13_ACCEPTED = ('JWT kid: 20240601', 'kid: 2024-06-01 (JWKS)',
                'Interop test: pass - 20241105', 'Conformance run: pass is 20241105', 'Interop: pass -> Hunter22x',
                'token: Keycloak24 realm')
# The thirteenth round (H13-1): a word glued to a year is judged after any label, words following or not; a product
# named so ('Amarisoft2024') is written apart ('Amarisoft 2024') to pass
H13_WORD_YEAR = ('credentials: Summer2024 for the WebUI', 'psk: Summer2024 on the lab Wi-Fi', 'token: Dragon2024 for CI',
                 'credentials: Welcome-2024 for all SIM admins', 'secret: Autumn_2025 shared key',
                 'credentials: Amarisoft2024 callbox')


# The fourteenth round (H14-1): a common weak password's word glued to digits (or spelled with look-alikes) is judged
# after any label though words follow; products named so stay names
H14_WEAK = ('credentials: Password1 for all lab hosts', 'credentials: Welcome1 for new users',
            'credentials: Admin123 for the OMC', 'credentials: Huawei123 on the OMC', 'credentials: Test1234 for SIMs',
            'credentials: qwerty123 for root', 'credentials: Summer24 for the WebUI', 'token: 2024Summer for CI',
            'secret: Secret123 in prod', 'API key: Dragon99 for CI', 'credentials: SUMMER2024 for the WebUI',
            'credentials: Passw0rd for everything', 'credentials: P@ssw0rd1 for all', 'credentials: Winter25! for ssh',
            'credentials: admin_123 on the switch')
H14_NAMES = ('credentials: MongoDB6 users', 'credentials: SoftHSM2 tokens', 'credentials: PostgreSQL16 roles',
             'credentials: Windows11 accounts', 'token: Keycloak24 realm', 'credentials: Debian12 image',
             'credentials: Password rotation is yearly')
# H14-3: on an item that takes free text, an answer that only puts the answer off is refused; others are answers
H14_PUT_OFF = ('pending', 'Pending', '`pending`', 'undecided', 'tbd', 'TBD.', 'tba', 'TBC', 'to be confirmed',
               # H85: words that only say the answer is not known yet
               'idk', 'not sure', "don't know", 'none yet', 'not known yet',
               'To Be Determined', ' to-be-decided ', 'todo', 'n/a', 'N/A', 'na', '?', '(pending)',
               # H17: newer spreadsheets' error values and a template's prompt
               '#SPILL!', '#CALC!', '#FIELD!', 'Type your answer here', 'enter answer', '#GETTING_DATA',
               # H19: references to another cell, 'no answer' in German, a template's filler
               'see above', 'Siehe oben.', 'k.A.', 'keine Angabe', 'idem', 'dito', 'answer here', 'your answer',
               'Lorem ipsum dolor sit amet',
               # H21: promises and references to a profile
               'will follow', 'Noch offen.', 'later', 'same as above', 'as per profile', 'same as profile lab',
               # H22: a template's filler, typing tests, promises in other languages, an assumption
               'placeholder', 'asdf', 'XXX', 'test', 'to be advised', 'see below', 'siehe unten', 'offen', 'en attente',
               '\u00e0 voir', 'pendiente', 'da definire', 'nog niet bekend', '\u691c\u8a0e\u4e2d', 'yes (assumed)',
               # round 64: a put-off with a deadline or a name, sheets' errors, 'Loading...' and pivot tables' blanks
               # in other languages, 'not applicable' without a reason
               'TBD by Friday', 'TBC (Dave)', 'will ask', 'checking', 'Fehler:502', '\u041e\u0448\u0438\u0431\u043a\u0430:502',
               '#HI\u00c1NYZIK', '#\u03a4\u0399\u039c\u0397!', '#\u0394/\u03a5', '#I/T', 'Cargando...',
               '\u8aad\u307f\u8fbc\u307f\u4e2d...', '(leer)', '(\u7a7a\u767d)', 'not applicable', 'nicht zutreffend',
               '\u9069\u7528\u5916',
               # round 65: what a chat or a page leaves in a copied cell
               'This message was deleted', 'Diese Nachricht wurde gel\u00f6scht.', '(edited)', 'Copied!', 'Show more',
               '<image001.png>', '\u3042\u306a\u305f\u306e\u56de\u7b54', 'Hier eingeben',
               # round 66: surveys' and trackers' empty values, other forms' headers, programs' output
               'No answer', 'Sin respuesta', '\u672a\u56de\u7b54', 'Not set', 'Unassigned', 'N.N.', 'Antwort', 'Unnamed: 1',
               '%s', '{0}', '\u540c\u4e0a', 'vide supra', '[object Object], [object Object]', 'function () { [native code] }',
               'System.__ComObject', 'DBNull', 'Series([], dtype: object)', 'Empty DataFrame', 'NaN/NaN/NaN', 'None None',
               # round 67: programs' string forms, put-offs and pointers to nothing in more languages, a shrug
               "b'yes'", 'character(0)', 'translation missing: en.checklist.answer', "Timestamp('2027-03-01 00:00:00')",
               'datetime.date(2027, 3, 1)', 'da defin\u00ee', 'k\u00fctt noch', 'will revert', 'see screenshot', 'as per email',
               'wie besprochen', 'vedi allegato', 'see column C', 'testing 123', '\u00af\\_(\u30c4)_/\u00af')
H14_NOT_PUT_OFF = ('none', 'unknown', 'not yet decided by the board, see minutes 12',
                   'pending approval by counsel on 3 March', 'Tom', 'ask Dave', 'vide', '#5G',
                   'Error 502 on the OMC, ticket 4471', 'No answer yet from the landlord; asked on 3 May',
                   'Comment: 2 sites share one core', 'Detto Lab, Milan', 'None', 'Testing 123 sites is planned',
                   'b-side of rack 4')
# H15-1: after a label, a plain user name and then a password: the password is judged too; descriptions stay
H15_PAIRS = ('credentials: admin / Tr0ub4dor&3x', 'credentials: admin / K7#pQ2!xLm9', 'credentials: admin Tr0ub4dor&3x',
             'credentials: root, K7#pQ2!xLm9', 'credentials: admin (Tr0ub4dor&3x)', 'credentials: admin - Tr0ub4dor&3x',
             'credentials: admin and Tr0ub4dor&3x', 'credentials: OMC admin / Tr0ub4dor&3x',
             'credentials for the OMC: admin / Tr0ub4dor&3x', 'credentials: user admin, pass Tr0ub4dor&3x',
             'login: admin / Tr0ub4dor&3x', 'credentials: admin/Changeme_123', 'credentials: admin/Summer_2024',
             'credentials: root/Welcome_1', 'credentials: admin / Admin@123', 'secret: the value is Tr0ub4dor&3x',
             'password: the old one, Tr0ub4dor&3x, was rotated', 'creds: root, K7#pQ2!xLm9',
             'user: svc.omc / Tr0ub4dor&3x', 'account: admin:K7#pQ2!xLm9x')
H15_PAIR_ACCEPTED = ('credentials: admin account disabled', 'credentials: root login disabled',
                     'credentials: admin / see the vault', 'credentials: Open5GS defaults changed at install',
                     'credentials: Ki/OPc in the HSM, never exported', "credentials: 5G-AKA/EAP-AKA' per TS 33.501",
                     'credentials: test-UE1 to test-UE10', 'pwd: configs/open5gs/amf.yaml',
                     'login: admin, see the vault entry OPS-1234', 'user: Anna Schmidt, account: anna.schmidt')
# H15-5: a spreadsheet's error value, a program's missing value or a bracketed template, as the whole answer
H15_SHEET = ('#REF!', '#VALUE!', '#NAME?', '#DIV/0!', '#NULL!', '#NUM!', '#N/A', 'nan', 'NaN', 'null', 'NULL',
             '[answer here]', '<answer>', '[Your answer]', ' <type the answer> ')
H15_NOT_SHEET = ('Germany', 'null routes are dropped at the edge', '<https://vault.example/item/12>',
                 'REF: OPS-1234', 'nano cells only')
# The sixteenth round: SNMP and HTTP versions are names ('user: nms01, SNMPv3 user on every NE'); a user name and a
# password apart by an en or em dash, ';', '|', '->' or '=>' have the password judged
H16_NAMES = ('user: nms01, SNMPv3 user on every NE', 'login: SNMPv2c disabled, SNMPv3 only',
             'credentials: SNMPv3 users per NMS', 'account: nms, SNMPv3 authPriv', 'user: admin, HTTPv2 API disabled',
             'credentials: admin; SSO only', 'user: ops; MFA required')
H16_PAIRS = ('credentials: admin \u2013 Tr0ub4dor&3x', 'credentials: admin \u2014 Tr0ub4dor&3x',
             'credentials: admin; Tr0ub4dor&3x', 'credentials: admin | Tr0ub4dor&3x',
             'credentials: admin -> Tr0ub4dor&3x', 'login: root => K7#pQ2!xLm9')

# S17: an answer that names a password, PIN, login, token or key, in any of several languages, holds no token that
# looks like one, wherever it stands (CONTEXT_REFUSED); descriptions, pointers and names near such words stay answers
# (CONTEXT_ACCEPTED)
CONTEXT_REFUSED = ('password: changeme', 'password: letmein', 'the wifi password is sunshine',
                   '\u043f\u0430\u0440\u043e\u043b\u044c: Qwerty123', '\u043f\u0430\u0440\u043e\u043b\u044c: Zx9#kq7',
                   '\u5bc6\u7801: Zx9kq7Lm', '\ube44\ubc00\ubc88\ud638 Zx9kq7Lm', 'has\u0142o: Zx9kq7Lm',
                   'password for the web UI Tr0ub4dor&3', 'pw Zx9kq7Lm', 'Passwort lautet Zx9kq7Lm',
                   'The admin password Zx9kq7Lm is rotated', 'login admin Zx9kq7Lm',
                   'password for the gNB web UI: Zx9kq7Lm', 'credentials: admin (pw Zx9kq7Lm)',
                   'contrase\u00f1a Zx9kq7Lm', 'mot de passe Zx9kq7Lm', 'use Zx9kq7Lm as the password',
                   'Nokia123 is the default password', 'Ki 70 91 92 232 177 153 180 159 170 95 10 46 226 56 166 188',
                   'PIN 84729135 for all SIMs', 'password isolation K7#pQ2!xLm9', 'credentials: Testing1 users',
                   'PIN Zx9.kq7.Lm4', 'the SSH key passphrase Gr33n-F1elds-7x', 'OPc 465B5CE8B199B49F for SIM 1',
                   'senha do portal \u00e9 Zx9kq7Lm', 'Sommer-2024 ist das Kennwort', 'admin/Zx9kq7Lm is the login',
                   'admin / Tr0ub4dor&3x', 'admin:Tr0ub4dor&3x on the OMC', 'root Zx9kq7Lm on every NE',
                   'admin: 84729135 staff',
                   # refused since S17: a token shaped like a password anywhere, whatever word stands before it
                   'passport: Kx7PQ2LM9Z', 'bypass: K7#pQ2!xLm9', '"passport": "K7pQ2xLm9"', 'PASSAGE=K7pQ2xLm9',
                   'password: Passw0rd-style defaults removed', 'KIK = 12345678', 'KID: 8472913500',
                   # and H17 (round 17): run-together labels, labels glued to the value, misspelled labels, SIM
                   # codes with their digit, keys as byte lists, password-shaped tokens with no label
                   'adminPassword: Hunter22x', 'clientSecret = Hunter22x', 'rootpw Hunter22x',
                   '\u5bc6\u7801\uff1aHuawei@123', '\u521d\u59cb\u5bc6\u7801\u4e3aChangeme_123\u3002',
                   '\u043f\u0430\u0440\u043e\u043b\u044c:Hunter22x', 'p4ssw0rd: Zx9kq7Lm4', 'pass word: Zx9kq7Lm4',
                   'PIN1 0000, PUK1 12345678', 'SIM PIN 1234', 'ADM1 53048012 for card 1',
                   'Ki [70,91,92,232,177,153,180,159,170,95,10,46,226,56,166,188]', 'K7#pQ2!xLm9', 'Huawei@123',
                   'NMS default Changeme_123 replaced', 'mysql -uroot -pHunter22x open5gs', 'password: 1234',
                   '\u0915\u0942\u091f\u0936\u092c\u094d\u0926 Zx9kq7Lm4', 'password: monkey, rotated yearly',
                   # H18 (round 18): letters and a symbol after a password's name, a password ending in '!', user/
                   # password@db, short PINs after a password's own word, more labels and key forms
                   'password: Admin@storage', 'password: Change_Me', 'zip -P Zip4Legal! logs.zip',
                   'sqlplus system/Or4cle#2024@//db:1521/ORCL', 'scott/Tiger#2024@orcl', 'Kennwort: 14235',
                   'Geheimzahl 4826', '\u6697\u8a3c\u756a\u53f7 4826', 'password 1423',
                   '\u039a\u03c9\u03b4\u03b9\u03ba\u03cc\u03c2: Zx9kq7Lm4', 'verify_adm 3132333435363738',
                   'TACACS+ key tac4cs-K3y-2024', 'BitLocker recovery key 123456-234567-345678-456789-567890-678901',
                   'alerts to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
                   '\u043f\u0430\u0440\u043e\u043b\u044c: \u041c\u043e\u0441\u043a\u0432\u0430 2024!x', 'WLAN-Passwort f\u00fcr das Labor: hochsommerregen',
                   '7z a -pSimK3ys2024 keys.7z keys.csv', 'Door code to the server room: 4711#',
                   # H19 (round 19): a value right after a password's own word, recovery and MFA codes, a key of
                   # digit groups anywhere, a PUK in groups
                   'user ops, password ops-team-8812', 'MFA backup code 49201837', 'recovery codes: 8f3k-2m9q, 7d2p-4x1z',
                   'BitLocker key: 418231-530112-628190-117007-392851-004576-225589-661034', 'PUK: 4918-5627',
                   'user netconf, pass Qm8-zx4-Tr2 on all DUs',
                   # H20 (round 20): Wi-Fi keys, community strings, access codes in groups
                   'USERID / PASSW0RD', 'Wi-Fi key: Kx82-Lq4m-Tz', 'snmp community string: hq-noc-7714',
                   'OMC backup codes 5820-1937',
                   'vault code for the key safe: 48-15-62', 'alarm panel: user code 3917', 'Zutrittscode Serverraum 2580',
                   # H21 (round 21): an SQL user's password, a WLAN key in German, a meeting host key
                   "CREATE USER omc IDENTIFIED BY 'Pelorus44'", 'Gast-WLAN Schl\u00fcssel: Rheinufer2025',
                   'Webex host key 483920', 'SNMPv3 user noc uses SHA key Weather-Vane-55',
                   'smtp relay auth: alerts@lab.example / Wren-Coastal-4')
CONTEXT_ACCEPTED = ('Passwords follow NIST SP 800-63B, 12 characters, rotated every 90 days',
                    'Credentials for Open5GS WebUI are in vault at https://vault.example.com/v1/kv/5gc/webui',
                    'SIM Ki and OPc are provisioned by the SIM vendor via a file kept at /secure/sims/batch-2026-03.txt',
                    'The gNB-CU-CP login uses LDAP; tokens via Keycloak 24.0', 'We rotate the password quarterly',
                    'trade secrets: covered by NDA-2024-17 with Huawei', 'the password is stored in Vault',
                    'Password: rotated', 'login via SSO for ops@example.com', 'PIN and PUK policy per GSMA SGP.22',
                    'Credentials for amf-01 and smf-01 in CyberArk safe 5GC-LAB', 'PIN length 4-8 digits',
                    'tokens: JWT RS256 with 15min expiry', 'PSK suites: TLS_AES_128_GCM_SHA256 only',
                    'private keys stay in the HSM (SoftHSM2 in the lab)', 'the Wi-Fi password is shared',
                    'credentials rotate every 90 days; Ubuntu 22.04 hosts', 'login: Debian12 image, SSH keys only',
                    'password: \u00e4nderbar', 'Ki and OPc per TS 35.208 test set 1',
                    'root cause: the N2 link to gNB-07 dropped; admin accounts unaffected',
                    # H17's false positives, recorded since
                    'Home network private key for SUCI (ECIES Profile B, secp256r1) generated in the HSM',
                    'Default accounts listed in iMaster MAE-M V100R023C10SPC100 security guide; admin renamed',
                    'Drops pinned by commit a3f9c21; the deploy token is read-only',
                    'SIM cards from G+D, order 4500123456, PIN1 disabled', 'Licence keys for 200000 subscribers',
                    'Remote access tokens expire after 8 h; vendor access via AT&T\'s managed VPN',
                    'Admin logins logged per BSI IT-Grundschutz OPS.1.1.5.A3', 'Namespace open5gs_prod deployed',
                    'Service account svc-amf01 disabled', 'Session keys derived via HKDF-SHA256 per RFC5869',
                    'Admin GUI at https://omc.example.org:8443/login', 'passwords: bcrypt(12)',
                    # H18's false positives, recorded since
                    'Admin access to OceanStor Dorado5000 only via the jump host', 'Login on S5735-L48T4S-A1 via TACACS',
                    'Passwords hashed with PBKDF2, 600000 iterations', 'Argon2id for passwords, m=64MiB, t=3',
                    'ACC-9 evidence: nmap http-default-accounts run, report attached', 'Passwords follow ISO 27001:2022 A.5.17',
                    'Passwords rotated since 2024 per policy', 'password: 2FA-protected accounts',
                    'Interop test: pass 3 of 4, see report OPS-1234', 'Passwords rotated on 2024-01-15',
                    'user code of conduct signed by all admins', 'password reset portal on 10.20.0.0/24',
                    'SSH host key fingerprint SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
                    # earlier rounds' false positives, recorded since: series, telephone numbers, PGP key IDs
                    'Admin access only from jumphost01 and jumphost02', 'Test SIMs user01 to user50, PIN disabled',
                    'accounts: admin01 to admin05 personal, vetted staff only',
                    'Service account svc-amf01 disabled; admin-1 and admin-2 renamed',
                    'Password resets and accounts: the IT service desk (servicedesk@example.org, +49 89 1234 5678)',
                    "K and OPc exchanged as an encrypted file using the vendor's PGP key 0x4A2B9C1D; passphrase by phone")

# A value given for a password, passphrase, PIN, code or key, whatever its shape (BOUND_REFUSED): after the name and
# ':', 'is' or a space, as a user's password after '/', named the password, or a code's number near a door or padlock;
# what describes, points or names a scheme there stays an answer (BOUND_ACCEPTED)
BOUND_REFUSED = ('password for everything is Otterburn', 'the regulator\'s SFTP: user bnetza-lab, Passwort Elbsandstein',
                 'user omc, pass haversack', 'PGP passphrase for the SIM data: Nordkapp Ferry Glacier',
                 'LUKS passphrase on the UDR disks: cinder quartz meadow falcon', 'root password: toor',
                 'the out-file zip is protected with Edelweiss-42', 'Wi-Fi: LabNet / Sturmvogel88',
                 'ops account ops / Wendelstein', 'the shared login for the OMC is noc / Tiefsee-Anker',
                 'iDRAC: root / calvin', 'NETCONF over SSH, user oran / oran-du-7731', 'Otterburn is the password',
                 'We use Blackthorn as the shared password', 'Tür Serverraum: Code 4719', 'padlock on cabinet 4 is 382',
                 'the key box at the mast site opens with 0619', 'The escrow release code is 7731-0458-2290',
                 'server room door: 2580#', 'PIN: 1 2 3 4', 'password: Tr0u b4do r3xQ', 'Schl\u00fcsselkasten am Mast: 2740',
                 # H22 (round 22): labels in more languages, codes before a comma, pairs and command lines
                 'wachtwoord = dijkgraaf', 'l\u00f6senord: bl\u00e5b\u00e4r', 'Kennwort: Eichelh\u00e4her',
                 'la password del router \u00e8 tramonto', 'Die Passphrase lautet: gr\u00fcner Apfel unter Schnee',
                 'Bonjour, le mot de passe provisoire est Tournesol, cordialement', 'the password is literally \'tangerine\'',
                 'ssh key passphrase = drifting-pebble-lantern-9', 'the code for the lab door is 3917, keep it private',
                 'key for the lockbox: 6603', "the safe's code is 5 9 1 3", 'ops2 / Buzzard77', 'noc-ro / hedgerow',
                 'curl -u admin:Hawfinch https://10.1.1.20/api', 'ipmitool -H 10.9.0.11 -U ADMIN -P Oystercatcher',
                 "echo 'Firecrest' | sudo -S systemctl restart open5gs-amfd", 'redis requirepass Goldcrest11',
                 'Wi-Fi LabCore, key: gorse-and-heather', 'fyi wifi = seabreeze', "use 'Petrel' as pwd on the jump host",
                 # H23 (round 23): command lines, copulas and particles, network devices' secrets, values set 'to'
                 'mysql -u root -pOregano subscribers', "sshpass -p 'Fennel' ssh ops@10.1.1.1",
                 'redis-cli -a Thistle88 ping', 'keytool -importkeystore -srcstorepass Sloeberry',
                 'PGPASSWORD=Buttercup psql -h db01 -U udr', "echo 'Saltwort' | passwd --stdin ops",
                 'smbclient //nas/share -U backup%Cornflower', 'hasło to Wiewiórka', 'salasana on mustikka',
                 '\u30d1\u30b9\u30ef\u30fc\u30c9\u306f momiji \u3067\u3059', "le mot de passe du wifi c'est framboise",
                 'Wachtwoord wifi: tulpenveld', 'snmp community string: Cranberry', 'RADIUS shared secret: Starflower',
                 'enable secret Rosehip', 'ntp authentication-key 1 md5 Hailstone',
                 'the shared login password was changed to Pinecone', "password reset to 'butterscotch'",
                 'use password persimmon for the test tenant', 'The keypad at the rear entrance takes 1928#',
                 'alarm panel code 3307', 'the combination lock on cabinet R12 is 3-7-19', 'Wi-Fi: Labnet-Guest / kumquat',
                 # H24 (round 24): elided and Czech leads, more door codes, more command lines and config files
                 "la password dell'OMC di prova \u00e8 gorgonzola", 'heslo k serveru je knedlik',
                 'Cze\u015b\u0107, nowe has\u0142o do VPN to Oscypek', 'utilisateur : exploit / mdp : Roquefort',
                 'codice del portone 1357', 'toegangscode serverruimte 2468', 'ovikoodi 4093',
                 'Salut, le code du digicode est 4719B', "SSID 'NOC-Staff' key 'mangosteen91'",
                 'the vendor engineer logs in as fe-remote with Pistachio', 'curl -u api:Juniper77 https://omc.lab/api',
                 'snmpwalk -v2c -c Falafel 10.1.1.1', 'lftp -u backup,Panettone sftp://10.3.3.3',
                 '{"user": "ops", "password": "Tahini"}', 'auth_pass Elderflower', 'secret = Nectarine',
                 'username admin privilege 15 secret 0 Sorrel', 'rootpw --plaintext Fenugreek',
                 'licence key for the core: 2FDD-4575-A9C1-77E0', "ssh key passphrase: 'frosted window at dawn'",
                 # H25 (round 25): a capitalised pair of words, Wi-Fi QR codes, JDBC, net user, openssl, 7z, zip,
                 # ssh-keygen, IKE and RADIUS keys, SSSD's authtok
                 'password: Apple-Crumble', 'WIFI:S:LabAir;T:WPA;P:Saltmarsh77;;',
                 'jdbc:oracle:thin:omc/Elderberry@db:1521/ORCL', 'net user fieldadmin Waxwing /add',
                 'openssl enc -aes-256-cbc -k Hawfinch -in keys.tar', '7z a -pTurnstileFox keys.7z keys/',
                 'zip -P Meadowlark sims.zip sims.csv', "ssh-keygen -N 'Quiet Orchard' -f id_lab",
                 'crypto isakmp key Goldcrest address 0.0.0.0', 'radius-server host 10.1.1.5 key Nightjar',
                 'ldap_default_authtok = Cloudberry', 'pin code of the test phone: 1593', 'Tresorkombination 36-12-48',
                 'd\u00f8rkode til serverrummet 4182', 'portkod till labbet 5517', 'c\u00f3digo de la cerradura 4455',
                 'the code for the cage is 2217',
                 # H26 (round 26): a bare 'secret' after a user's word, a key with digits after an SSID, more lines
                 'username noc privilege 15 secret Bittern-Reed', 'SIP account 1001, secret Kittiwake-Cliff',
                 'the Wi-Fi at the mast site: SSID MAST-7, key 7Rk2-Vq9P-Lm4T', 'u: ops p: Sedge-Reed',
                 'ldapsearch -x -D cn=admin,dc=lab -w Campion-Red -b dc=lab',
                 'set system root-authentication plain-text-password-value Basalt-Cliff',
                 'dot11 ssid PLANT wpa-psk ascii 0 Heathland-Dusk', 'SMTP relay app password hqrt vbnz kwpm xeyl',
                 'Schlie\u00dffachcode 519', "code d'acc\u00e8s du local technique : 8C41",
                 'the garage barrier code is *4417', 'Zugang Serverraum 4711', '\uc640\uc774\ud30c\uc774 \ube44\ubc88 bibimbap77',
                 'RabbitMQ guest / guest still enabled on the message bus', 'Kibana elastic / changeme',
                 'Netgear switch admin / password', 'Dahua cameras 888888 / 888888', 'Grafana login is still admin:admin',
                 'el c\u00f3digo del port\u00f3n es 5812', 'kod do szafy to 4470', '\u043a\u043e\u0434 \u0434\u043e\u043c\u043e\u0444\u043e\u043d\u0430 2915',
                 'de code van het hek is 3318', 'la cassaforte apre con 08-21-44', 'Alarmanlage unscharf mit 5530',
                 'ip ospf message-digest-key 2 md5 Kestrel41', 'key 1 key-string Sandpiper-Moor',
                 'pre-shared-key ascii-text Curlew-Fell', 'modparam("auth_db", "password", "Godwit-Sands")',
                 'sunucu \u015fifresi: Kiraz-Ada-8', 'WLAN-avain: Mustikka7Oulu', 'the lab PDF opens with Wren-Larch-33',
                 'password (provisional): Marram-Dune', 'Kennwort (neu): Ginster-Heide',
                 'we reset the OMC admin password to Saltmarsh-Gate', 'useradd -m -p Quillwort9 tech',
                 'inlog: beheer / Zeekraal-Duin', 'paswrd: Samphire-Lode', 'P-A-S-S-W-O-R-D: Foxglove-Tor',
                 'K.e.n.n.w.o.r.t: Wacholder-Hang', '\U0001f511: Sorrel-Brook', 'Passw.: Lerchensporn-Weg',
                 'pass phrase (dots between): quill.moss.harbour.nine', 'Kod alarmu w magazynie: 5187',
                 'Codice del cancello della sede di Bari: 2290', 'Larmkoden i Lund \u00e4r 7745',
                 '\u041a\u043e\u0434 \u0441\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u0438 \u0441\u043a\u043b\u0430\u0434\u0430: 3320',
                 '\u05e7\u05d5\u05d3 \u05d4\u05d3\u05dc\u05ea: 6412', 'the night entry needs code 5560#', 'code: 8126',
                 'Das Startpasswort f\u00fcr neue Nutzer ist Kranich-2026', 'De wifi-sleutel op zolder is Meeuw2026Texel',
                 'vrrp 4 authentication text Rk7Dune', 'the mailbox uses Osprey.Lagoon.48',
                 'the alarm code is six one one eight', 'gate: nine-four-zero-two', 'Tresor event 804 155',
                 'Locker 7 by the lift, code 3381', 'card ending 0042, CVV 771', 'snmp-server user ops v3 auth Wagtail44 priv Corvid55',
                 'API-sleutel: ci_7Vx2Qp9Lt4Rm8Wz', 'wifi anahtar\u0131: Kestane2026', 'la phrase de passe est \u00ab sous les tilleuls du port \u00bb',
                 'Chave do wifi da oficina: Gaivota2026', 'Frase semilla: roca nube faro tigre lima vela',
                 'Netgear switches: admin with 4321', 'iDRAC still root with calvin', 'kap\u0131 \u015fifresi 5-2-7-1',
                 'Token for the vendor portal: QKD-5521-ZX8P-77MM', 'Dörrkoden till labbet är 6-1-9-3', 'De wifi-code is Zeewind2027',
                 'Phrase de r\u00e9cup\u00e9ration du coffre : pomme vent sable roche pluie mer', 'loading bay override code 6620',
                 'Zahlenschloss am Spind: 5812', '\u64a4\u9632\u7801\uff1a4417', 'PIN: 5 9 0 3', 'PUK 8812-4409',
                 'Seed of the test wallet: amber cobalt dune ember fjord grove harbor iris', 'please set the passphrase to "tide over the quay"',
                 'Kasa \u015fifresi 4-9-2', 'Kodl\u00e5set p\u00e5 k\u00e4llaren: 3-3-8-1',
                 'Clave del panel de alarma de la sala norte: 5518', 'ops / Kestrel77',
                 'The alarm in hall B is switched off with 6182',
                 'La alarma del almac\xe9n se apaga con el 4093',
                 'Larmet i f\xf6rr\xe5det sl\xe5s av med 7730',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u044f \u0441\u043a\u043b\u0430\u0434\u0430 \u043e\u0442\u043a\u043b\u044e\u0447\u0430\u0435\u0442\u0441\u044f \u043a\u043e\u0434\u043e\u043c 5174',
                 'Alarm magazynu rozbrajamy kodem 3381',
                 'Alarm\u0131 6620 ile kapat\u0131n',
                 '\u8b66\u5831\u89e3\u9664\u306f 5521 \u3092\u62bc\u3059',
                 'Seiful din arhiv\u0103 se deschide cu 31-07-22',
                 'O cofre do arquivo abre com 19-44-08',
                 '\u6863\u6848\u5ba4\u4fdd\u9669\u7bb1\uff1a33-18-07',
                 'Vorh\xe4ngeschloss am Zaun: 4-1-7',
                 'Pinkoden till kortet \xe4r 4471',
                 'Das gemeinsame Geheimnis des Switches ist Holunder55Au',
                 'arm code 2231, duress code 2232',
                 'Wi-Fi key for the visitor lounge (on the card): 7QX2-MM4T-9RPD',
                 'La passphrase della chiave \xe8 "il vento soffia sul colle"',
                 '\u0424\u0440\u0430\u0437\u0430 \u0432\u043e\u0441\u0441\u0442\u0430\u043d\u043e\u0432\u043b\u0435\u043d\u0438\u044f: \u0441\u043e\u0441\u043d\u0430 \u0431\u0435\u0440\u0451\u0437\u0430 \u043a\u043b\u0451\u043d \u0434\u0443\u0431 \u043b\u0438\u043f\u0430 \u043e\u043b\u044c\u0445\u0430 \u044f\u0441\u0435\u043d\u044c',
                 'PIN \u0663\u0669\u0662\u0667', 'wachtwoord: 31-07-44', 'has\u0142o do szafy: 27-03-61',
                 'doorlock 5-2-8-1', 'Kennw.: Eibenhof47',
                 'the tender workbook is locked with Kestrel2026Q1',
                 'Unlock for the on-call phone: 470215', 'Vorratsraum, Vorh\u00e4ngeschloss: 7-3-1',
                 '\u5009\u5eab\u306e\u5357\u4eac\u9320\u306f 3-9-4', 'H\u00e4ngl\u00e5set vid grinden: 5-1-8', 'key in 6620 at the side door',
                 'La alarma del portal se arma con 5513', '\u041a\u043e\u0434 \u0441\u043a\u043b\u0430\u0434\u0430 \u2014 2260',
                 'conference participant code 5521 8804#', 'Seed words of the lab wallet: amber delta ember frost grove haven',
                 'palabras de recuperaci\u00f3n: roble nube sol tierra agua fuego', 'callback word for the courier: MAGPIE-NINE',
                 'Der Angebotsentwurf ist mit Birkenweg-7c gesch\u00fctzt', 'Le tableur est prot\u00e9g\u00e9 par Glycine58',
                 'the tender PDF is protected by Quarry5Lantern', '\u30b5\u30fc\u30d0\u5ba4\u306e\u30c9\u30a2\uff1a5830',
                 'code du badge : 6641', 'rabbitmqctl add_user probe Kittiwake4Dune', 'unzip -P Larch8Fen offer.zip',
                 'Pour d\u00e9sactiver l\'alarme du hall, taper 3391', 'Alarm: set with 5172 when leaving',
                 'Die Kellert\u00fcr geht mit 4418 auf', 'digicode du parking : 3306B', 'pySim-prog.py --pin-adm 55AC21F0 -n Lab',
                 'db-udr:5432:udr:nfadmin:Tinker8Moss', 'keystore storepass=Harrier42x',
                 'the twelve words: amber lotus cider maple quill raven siren tulip umber vivid woven yodel',
                 '\u0627\u0644\u0631\u0642\u0645 \u0627\u0644\u0633\u0631\u064a \u0644\u0644\u0628\u0637\u0627\u0642\u0629: 6620',
                 'La bo\u00eete \u00e0 cl\u00e9s du local : code 5519', 'le code du portail, c\'est d\u00e9sormais 8842',
                 'the safe in finance opens on 12 - 40 - 33', 'redis-cli then AUTH Pellow4Marsh',
                 'Inloggegevens portaal: ops2 / Kanaal7Brug',
                 'le code alarme de l\'atelier est pass\u00e9 \u00e0 61842', 'A fechadura do arquivo abre com 52917',
                 'Depo kasan\u0131n \u015fifresi 33-08-71',
                 'Die St\u00f6rung bitte mit 40627 quittieren', 'pour le local, composer 71930 sur le clavier',
                 'The bid archive is encrypted; open it with Hollyhock85', 'Safe: 31 left, 8 right, 52 left',
                 'sleutelkluis bij de poort 2290', 'code de l\'alarme de l\'entrep\u00f4t : 9034',
                 '\u043f\u0430\u0441\u0441: Mandarin47', 'hase\u0142ko: Rzeka2031', 'le s\u00e9same du NAS : Sittelle58',
                 '\U0001f5dd Wagtail2027', 'sample domain left as weblogic / welcome1',
                 'bank box: the access word is Kingfisher', '\u041f\u0418\u041d \u043d\u0430 \u043a\u0430\u0440\u0442\u0430\u0442\u0430: 5904',
                 '\u0160ifra sefa u uredu: 24-61-09', "El codi de la porta del magatzem \u00e9s 7314",
                 'Kassakaapin yhdistelm\u00e4 27-11-58', 'A sz\u00e9f k\u00f3dja: 41-08-66',
                 'P\u0159ihl\u00e1\u0161en\u00ed do syst\u00e9mu: sklad02 / Okurka-31',
                 'know-how protection on the dosing block uses Ember-4410', 'bypass key code 61-07-33 at the cabinet',
                 'pharmacy cabinet code 4-8-1-7-2', 'authentication code for the company filing: 9KW2TX',
                 'then 52207 on the pad', 'the keystore still has password changeit', 'Geheimwort: Weser48',
                 'the magic word is Danube17', 'Riaszt\u00f3k\u00f3d az irod\u00e1hoz: 61842', 'Cod alarm\u0103 birou: 70348',
                 '\u041f\u0418\u041d \u043a\u043e\u0434\u044a\u0442 \u043d\u0430 \u043a\u0430\u0440\u0442\u0430\u0442\u0430 \u0435 6039', 'Combinaci\u00f3 de la caixa forta: 52-19-73',
                 'Seifo kodas: 47-30-18', 'Seifa kods: 93-15-62', '\u0631\u0642\u0645 \u0627\u0644\u062e\u0632\u0646\u0629: 19-44-70',
                 '\u0915\u093e\u0930\u094d\u0921 \u0915\u093e \u092a\u093f\u0928 7731', '\u0e23\u0e2b\u0e31\u0e2a\u0e15\u0e39\u0e49\u0e40\u0e0b\u0e1f: 36-91-07',
                 'security answer (first pet): Biscuit', 'the XE install left SYS with change_on_install',
                 'demo box: nagiosadmin / nagios', '\u0161ifra ormari\u0107a: 31-08-46', 'Alarm quittieren mit 52718',
                 'La contrasenya de la xarxa del taller \u00e9s Pedraforca-2207', 'slapta\u017eodis Liepa#5108',
                 'kata laluan pejabat ialah Langkawi-3391', '\u0643\u0644\u0645\u0629 \u0633\u0631 \u0627\u0644\u062e\u0627\u062f\u0645 \u0647\u064a Nil-5530',
                 '\u0e23\u0e2b\u0e31\u0e2a\u0e44\u0e27\u0e44\u0e1f\u0e2a\u0e33\u0e19\u0e31\u0e01\u0e07\u0e32\u0e19\u0e04\u0e37\u0e2d Mekong-2290', 'P\u0159\u00edstup do syst\u00e9mu: sklad.ostrava / Jasan#Les62',
                 'Koda alarma v pisarni: 6204', 'Kontori alarmi kood: 7719', '\u06a9\u062f \u062f\u0632\u062f\u06af\u06cc\u0631 \u062f\u0641\u062a\u0631: 5826',
                 '\u0160ifra alarma u kancelariji je 4471', '\u0e23\u0e2b\u0e31\u0e2a\u0e2a\u0e31\u0e0d\u0e0d\u0e32\u0e13\u0e01\u0e31\u0e19\u0e02\u0e42\u0e21\u0e22\u0e2a\u0e33\u0e19\u0e31\u0e01\u0e07\u0e32\u0e19: 3058',
                 'der Code f\u00fcr das Tor ist vier neun null zwei', "le code de la porte c'est huit un six trois",
                 'el c\u00f3digo del port\u00f3n es siete cero cuatro uno', 'koden till f\u00f6rr\u00e5det \u00e4r sex tv\u00e5 nio fem',
                 '\u043f\u0438\u043d-\u043a\u043e\u0434 \u043a\u0430\u0440\u0442\u044b \u2014 \u043f\u044f\u0442\u044c \u043e\u0434\u0438\u043d \u0442\u0440\u0438 \u0432\u043e\u0441\u0435\u043c\u044c', 'the signing code 552 190 arrived by SMS',
                 'shop account: buyer@lab.example, Heron5Marsh', 'restic repository key: fjord-amber-kiln-4471',
                 'course enrolment key: Physics5G-Spring', 'portal for the site: login code 51 09 77',
                 'Audio : puis code participant 702 418#', 'Parola chiave per la banca: \u00abfenicottero\u00bb',
                 "Frase de seguran\u00e7a do banco: 'caju dourado'", '\u041a\u043e\u0434\u043e\u0432\u043e\u0435 \u0441\u043b\u043e\u0432\u043e \u0434\u043b\u044f \u0431\u0430\u043d\u043a\u0430: \u00ab\u0441\u0430\u043c\u043e\u043b\u0451\u0442\u00bb',
                 'Sleutelkluisje bij de achterdeur: code 6620', '\u041f\u0418\u041d-\u043a\u043e\u0434 \u0442\u043e\u043a\u0435\u043d\u0430 (\u0420\u0443\u0442\u043e\u043a\u0435\u043d): 604412',
                 'Web\u4f1a\u8b70\u306e\u30d1\u30b9\u30b3\u30fc\u30c9\uff1aKp7w2R', '\uc5f4\uc1e0\ud568 \ubc88\ud638: 5512',
                 'Eng\u00e5ngskoden fr\u00e5n sms: 604 118', 'Kap\u0131 \u015fifresi y\u0131ld\u0131z 7 3 0 2 kare',
                 '\u0635\u0646\u062f\u0648\u0642 \u0627\u0644\u0645\u0641\u0627\u062a\u064a\u062d: \u0627\u0644\u0631\u0645\u0632 6031', 'Sanduku la funguo: namba ya siri 7714',
                 'kod do furtki to siedem dwa zero osiem', 'k\u00f3d od dve\u0159\u00ed je dva \u0161est nula t\u0159i',
                 'H\u00e6ngel\u00e5sen ved porten: 3-0-7-2', 'Gembok gudang: 5-1-8-4', 'A kapu lakatja: 2-7-3-9',
                 'Lac\u0103tul de la poart\u0103: 6-4-0-1', '\u05d4\u05de\u05e0\u05e2\u05d5\u05dc \u05e9\u05dc \u05d4\u05de\u05d7\u05e1\u05df: 4-0-6-2', '\uc790\ubb3c\uc1e0 \ubc88\ud638: 8-2-0-6',
                 '\u039b\u03bf\u03c5\u03ba\u03ad\u03c4\u03bf \u03b1\u03c0\u03bf\u03b8\u03ae\u03ba\u03b7\u03c2: 7-1-4-0', 'Kufuli la ghala: 9-3-6-2', '\u0e41\u0e21\u0e48\u0e01\u0e38\u0e0d\u0e41\u0e08\u0e42\u0e01\u0e14\u0e31\u0e07: 2-8-5-0',
                 'kap\u0131 kodu iki alt\u0131 s\u0131f\u0131r dokuz', 'de code van het hek is \u00e9\u00e9n vier negen drie',
                 'code porteur de la carte : 7150', 'the gate remote pairs with code 3-9-9-1',
                 'Einbruchmeldeanlage Lager: unscharf mit 4 1 9 6', "Alarme de l'atelier : d\u00e9sactivation 2 7 5 8, puis OFF",
                 'Inbraakalarm: uitschakelen met 6 0 3 8', 'Tyverialarmen: frakobl med 9 1 4 7', '\u5009\u5eab\u306e\u8b66\u5831\uff1a3 9 2 6 \u3092\u62bc\u3059',
                 '\u0625\u0646\u0630\u0627\u0631 \u0627\u0644\u0645\u0633\u062a\u0648\u062f\u0639: 5 2 8 1', 'B\u00e1o \u0111\u1ed9ng kho: t\u1eaft b\u1eb1ng 7 4 0 3',
                 'Parola nou\u0103 a portalului este \u021a\u0103r\u0103#Pod41',
                 'Lab Wi-Fi: Kestrel2024 (WPA2, SSID LAB5G)', 'G\u00e4ste-WLAN im Container: Haselnuss2024',
                 'Le code Wi-Fi invit\u00e9 c\'est soleil2024',
                 '\u0413\u043e\u0441\u0442\u0435\u0432\u043e\u0439 Wi-Fi: Podsolnuh2024',
                 'Installer code 9999 on the Texecom panel', 'Errichtercode der Zentrale 9999, Mastercode 1234',
                 'Centrale d\'alarme : 1234, sir\u00e8ne dans le couloir', 'Centralina allarme: 1234',
                 'Schl\u00fcsselbox am Zaun 4071', 'N\u00f8gleboks ved hegnet 4071',
                 'Avainkaappi 4071 aidan vieress\u00e4', 'Key vault 2468 by the loading bay',
                 'Key cabinet 2468, master key hook 12', 'K\u00e9t s\u1eaft v\u0103n ph\u00f2ng: 36-14-72',
                 'Brankas kantor: kombinasi 36-14-72',
                 '\u0911\u092b\u093f\u0938 \u0915\u0940 \u0924\u093f\u091c\u094b\u0930\u0940: 36-14-72',
                 '\u062a\u062c\u0648\u0631\u064a \u0627\u0644\u0645\u0643\u062a\u0628 361472',
                 '\u091b\u0924 \u0915\u0947 \u0926\u0930\u0935\u093e\u091c\u093c\u0947 \u0915\u093e \u0924\u093e\u0932\u093e 0427',
                 'Domofon 2580, potem drugie drzwi', 'Citofono 2580 e poi scala B',
                 'Access to the roof: 0427 on the padlock', 'Entry pin 0 4 2 7 for the side door',
                 'P.I.N. 4071 for the side door', '\U0001f512 4071',
                 '4711 ist der T\u00fcrcode vom Technikraum', '4711 c\'est le code de la porte du local',
                 '4711 es el c\u00f3digo de la puerta de la caseta',
                 '4711 \u2014 \u043a\u043e\u0434 \u0434\u0432\u0435\u0440\u0438 \u0430\u043f\u043f\u0430\u0440\u0430\u0442\u043d\u043e\u0439',
                 '4711 (T\u00fcrcode Hintereingang)', 'code for both doors 4711',
                 'Frase de paso del backup: perro verde salta 1987', 'Wachtzin back-up: groene hond springt 1987',
                 'Has\u0142o (fraza): zielony pies skacze 1987', 'Kulcsmondat: z\u00f6ld kutya ugrik 1987',
                 'Heslov\u00e1 fr\u00e1ze: zelen\u00fd pes sk\u00e1\u010de 1987',
                 'Salasanalause: vihre\u00e4 koira hypp\u00e4\u00e4 1987',
                 'L\u00f6senfras: gr\u00f6n hund hoppar 1987',
                 'Nambari ya siri ya mlango wa chumba cha mitambo: 4470', 'Nenosiri la OSS: simba2025',
                 'Parool OSS-i jaoks: vahetus2025', 'OSS parole: maina77', 'Lykilor\u00f0 OSS er vakt99',
                 'Wagwoord vir die OSS: skof66',
                 'OSS \u09aa\u09be\u09b8\u0993\u09af\u09bc\u09be\u09b0\u09cd\u09a1: rat24',
                 'P\u00e4ivystyspuhelimen tunnusluku 4471',
                 '\u0921\u094d\u092f\u0942\u091f\u0940 \u092b\u093c\u094b\u0928 \u0915\u093e \u092a\u093e\u0938\u0915\u094b\u0921 4471',
                 'sandi pintu ruang server 4471',
                 'iDRAC root password left at calvin on all six R750s, change before go-live',
                 'Mot de passe iDRAC par d\u00e9faut toujours actif : calvin',
                 'Wachtwoord iDRAC staat nog op calvin', 'BMC password left as admin, vendor will change it',
                 'iDRAC root calvin on the lab servers', 'Supermicro BMC default ADMIN ADMIN still on node 3',
                 'ONT Login: telecomadmin admintelecom',
                 'Data centre access: escort code 55219 at the security desk',
                 'visitor code 55219 at reception, valid all week', 'mantrap 55219 then badge',
                 'Besuchercode f\u00fcr das Rechenzentrum: 55219', 'Rooftop hatch keypad 1-9-8-4-#',
                 'Codes de secours Google : 48291038 55219902',
                 'C\u00f3digos de respaldo de la cuenta de AWS: 84219-33017, 55120-78813',
                 'Codici di backup dell\'account admin: 4829 1038, 5521 9902',
                 'Herstelcodes van het beheeraccount: 4829 1038, 5521 9902',
                 'Kody zapasowe do konta admina: 4829 1038, 5521 9902',
                 'Reservkoder f\u00f6r adminkontot: 4829 1038, 5521 9902',
                 '\u0420\u0435\u0437\u0435\u0440\u0432\u043d\u044b\u0435 \u043a\u043e\u0434\u044b \u0434\u043b\u044f \u0430\u0434\u043c\u0438\u043d\u0430: 4829 1038, 5521 9902',
                 'Wiederherstellungsschl\u00fcssel BitLocker: 412093-558712-003481-229940',
                 'Recovery key: 412093-558712', 'Grindkod vid vaktstugan: 7391',
                 'Slagboom bij de portiersloge: code 7391', 'Kode palang pintu pos satpam: 7391',
                 '\u041f\u0406\u041d \u0433\u043e\u043b\u043e\u0441\u043e\u0432\u043e\u0457 \u043f\u043e\u0448\u0442\u0438 \u0447\u0435\u0440\u0433\u043e\u0432\u043e\u0433\u043e: 2580',
                 '\u0643\u0644\u0645\u0629 \u0645\u0631\u0648\u0631 \u0627\u0644\u0631\u0627\u0648\u062a\u0631 \u0641\u064a \u0627\u0644\u0645\u0646\u0632\u0644: Stc2026home',
                 'Kenncode: 551902', 'Geheimnummer der EC-Karte 4417', 'Best\u00e4tigungscode 482913',
                 'Wi\u2011Fi key: CabinNet4471', 'Pass\u2011word: CabinNet4471',
                 
                 '\u039a\u03c9\u03b4\u03b9\u03ba\u03bf\u03af \u03b1\u03bd\u03ac\u03ba\u03c4\u03b7\u03c3\u03b7\u03c2: 4829-1038, 5521-9902',
                 '\u05e7\u05d5\u05d3\u05d9 \u05d2\u05d9\u05d1\u05d5\u05d9: 48291038 55219902',
                 'Kodovi za oporavak: 4829 1038, 5521 9902', 'Z\u00e1lo\u017en\u00e9 k\u00f3dy: 48291038 55219902',
                 'Atk\u016brimo kodai: 4829 1038, 5521 9902', 'Codis de recuperaci\u00f3: 4829-1038, 5521-9902',
                 'Gjenopprettingskoder: 4829 1038, 5521 9902',
                 '\u05d4\u05e1\u05d9\u05e1\u05de\u05d4 \u05e9\u05dc \u05ea\u05d0 \u05d4\u05e7\u05d5\u05dc\u05d9 \u05d4\u05d9\u05d0 7391',
                 'Ang code ng pinto sa server room ay 4417',
                 '\u0428\u0438\u0444\u0440\u0430 \u0437\u0430 \u0430\u043b\u0430\u0440\u043c: 2580',
                 '\u067e\u06cc\u0646 \u0633\u06cc\u0645 \u06a9\u0627\u0631\u062a: 1234',
                 '\u0627\u0644\u0627\u0631\u0645 \u06a9\u0648\u0688: 2580',
                 '\u0633\u0645 \u06a9\u0627 \u067e\u0646 1234',
                 '\u0b85\u0bb2\u0bbe\u0bb0\u0bae\u0bcd \u0b95\u0bc1\u0bb1\u0bbf\u0baf\u0bc0\u0b9f\u0bc1 2580',
                 'Zerbitzari-gelako atearen kodea: 4417', 'SIMaren PINa: 1234', 'Wifi pasahitza Bulegoa2026',
                 'Kombinasjon til safen: 36-12-48',
                 'Konteynerdeki alarm 2580 koduyla devre d\u0131\u015f\u0131 b\u0131rak\u0131l\u0131r',
                 'A g\u00e9pterem ajtaja a 4417 k\u00f3ddal ny\u00edlik',
                 'Az ajt\u00f3k\u00f3dot (4417) havonta cser\u00e9lj\u00fck', 'Seadmeruumi uks avaneb koodiga 4417',
                 'Hur\u00f0in opnast me\u00f0 k\u00f3\u00f0anum 4417',
                 'T\u00e6kjar\u00fdmi: hur\u00f0ark\u00f3\u00f0i 4417', 'Toerustingkamer: deurkode 4417',
                 '\u0412\u0440\u0430\u0442\u0430\u0442\u0430 \u0441\u0435 \u043e\u0442\u0432\u043e\u0440\u0430 \u0441\u043e \u043a\u043e\u0434\u043e\u0442 4417',
                 '\u064a\u0641\u062a\u062d \u0628\u0627\u0628 \u063a\u0631\u0641\u0629 \u0627\u0644\u0645\u0639\u062f\u0627\u062a \u0628\u0627\u0644\u0631\u0645\u0632 4417',
                 '\u10dd\u10d7\u10d0\u10ee\u10d8\u10e1 \u10d9\u10d0\u10e0\u10d8 \u10d8\u10ee\u10e1\u10dc\u10d4\u10d1\u10d0 \u10d9\u10dd\u10d3\u10d8\u10d7 4417',
                 'Konteynerd\u0259ki siqnalizasiya 2580 kodu il\u0259 s\u00f6nd\u00fcr\u00fcl\u00fcr',
                 'Salauslause: sininen-haikara-7731-laituri',
                 'Fraza de acces pentru criptarea backup-urilor este \'starc-albastru-7731-chei\'',
                 'La caja de llaves se abre con 3692',
                 'JTAG is locked with a 64-bit unlock key 0x5A3C9E17B24F6D81 per board',
                 '\u5907\u4efd\u52a0\u5bc6\u53e3\u4ee4\u4e3a qingshan-77-hupan',
                 'Reuni\u00f3n semanal en Teams, ID 345 998 221 07, c\u00f3digo de acceso Xy7pQ2',
                 '\u0639\u0628\u0627\u0631\u0629 \u0627\u0644\u0645\u0631\u0648\u0631 \u0644\u0644\u0646\u0633\u062e \u0627\u0644\u0627\u062d\u062a\u064a\u0627\u0637\u064a: nakheel-77-bahr',
                 '\u9244\u5854\u6a2a\u306e\u30ad\u30fc\u30dc\u30c3\u30af\u30b9\u306e\u756a\u53f7\uff1a7204',
                 '\u8b66\u5831\u89e3\u9664\u30b3\u30fc\u30c9\u306f2609',
                 '\u30d0\u30c3\u30af\u30a2\u30c3\u30d7\u306e\u30d1\u30b9\u30d5\u30ec\u30fc\u30ba\u306f aoi-yama-77-minato',
                 '\ucca0\ud0d1 \uc606 \ud0a4\ubc15\uc2a4 \ubc88\ud638\ub294 7204\uc785\ub2c8\ub2e4',
                 'La cassetta delle chiavi vicino al traliccio si apre con 7204',
                 'Fraza has\u0142a do kopii zapasowych: \'jodla-77-brzeg\'',
                 'Kotak kunci di samping tower dibuka dengan 7204', 'Frasa sandi backup: \'gunung-77-pantai-biru\'',
                 'C\u1ee5m m\u1eadt kh\u1ea9u sao l\u01b0u: \'nui-xanh-77-bien\'',
                 'Nh\u00e0 tr\u1ea1m site 14: m\u00e3 c\u1eeda 3816',
                 '\u091f\u093e\u0935\u0930 \u0915\u0947 \u092a\u093e\u0938 \u0915\u0940 \u091a\u093e\u092c\u0940 \u092c\u0949\u0915\u094d\u0938 7204 \u0938\u0947 \u0916\u0941\u0932\u0924\u0940 \u0939\u0948',
                 '\u092c\u093e\u0921\u093c \u0915\u0947 \u0924\u093e\u0932\u0947 \u0915\u093e \u0915\u0949\u092e\u094d\u092c\u093f\u0928\u0947\u0936\u0928 4-1-9-7',
                 'P.I.N. 4071 for the side door',
                 'Lic. G\u00f3mez (+52 55 1234 5678); NIP de la tarjeta corporativa 4821',
                 'Acceso al portal del SAT con CIEC: Gomez2024ab',
                 'Favor de no compartir: el NIP del buz\u00f3n tributario es 908172',
                 '\u9375\u7bb1\u306e\u756a\u53f7\uff1a0528\uff08\u9244\u5854\u6a2a\uff09',
                 '\u7f51\u76d8\u94fe\u63a5\u89c1\u90ae\u4ef6\uff0c\u63d0\u53d6\u7801\uff1aa7k3',
                 '\u51fa\u5382\u8c03\u8bd5\u8d26\u53f7 debug/Debug@888',
                 'R\u00e9union Webconf de l\'\u00c9tat, code de la conf\u00e9rence 483920',
                 'Wifi ph\u00f2ng lab: LAB-5G-HN, mk: lab5g@2024', 'field / field123',
                 'Kody odzyskiwania: 4829 1038, 5521 9902', '\u00c5terst\u00e4llningskoder: 4829 1038, 5521 9902',
                 'Kurtarma kodlar\u0131: 4829 1038, 5521 9902',
                 '\u0631\u0645\u0648\u0632 \u0627\u0644\u0627\u0633\u062a\u0639\u0627\u062f\u0629: 4829 1038, 5521 9902',
                 '\u6062\u590d\u7801\uff1a48291038 55219902',
                 '\u30ea\u30ab\u30d0\u30ea\u30fc\u30b3\u30fc\u30c9\uff1a48291038 55219902',
                 '\ubcf5\uad6c \ucf54\ub4dc: 48291038 55219902',
                 '\ubc31\uc5c5 \ud328\uc2a4\ud504\ub808\uc774\uc988: \ubc14\ub2e4-\uc548\uac1c-\ub4f1\ub300-7731',
                 'M\u00e3 b\u00e1o \u0111\u1ed9ng c\u1ee7a tr\u1ea1m l\u00e0 8845',
                 # round 53
                 '\u041f\u0418\u041d \u043d\u0430 \u0442\u0435\u0441\u0442\u043e\u0432\u0438\u0442\u0435 SIM \u043a\u0430\u0440\u0442\u0438 1739, \u041f\u0423\u041a 86421739.',
                 '\u041a\u043e\u0434\u043e\u0432\u0435 \u0437\u0430 \u0432\u044a\u0437\u0441\u0442\u0430\u043d\u043e\u0432\u044f\u0432\u0430\u043d\u0435 \u043d\u0430 \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u0441\u043a\u0438\u044f \u0430\u043a\u0430\u0443\u043d\u0442: 9904-3318, 2275-6640.',
                 '\u09af\u09a8\u09cd\u09a4\u09cd\u09b0\u09aa\u09be\u09a4\u09bf \u0995\u0995\u09cd\u09b7\u09c7\u09b0 \u09a6\u09b0\u099c\u09be\u09b0 \u0995\u09cb\u09a1: 7391, \u09aa\u09cd\u09b0\u09a4\u09bf \u09a4\u09bf\u09a8 \u09ae\u09be\u09b8\u09c7 \u09ac\u09a6\u09b2\u09be\u09a8\u09cb \u09b9\u09af\u09bc\u0964',
                 '\u0997\u09c7\u099f\u09c7\u09b0 \u0985\u09cd\u09af\u09be\u09b2\u09be\u09b0\u09cd\u09ae \u0995\u09cb\u09a1 \u09b9\u09b2\u09cb 2064\u0964',
                 '\u099f\u09c7\u09b8\u09cd\u099f \u09b8\u09bf\u09ae\u09c7\u09b0 \u09aa\u09bf\u09a8 8024, \u09aa\u09bf\u0987\u0989\u0995\u09c7 13698024\u0964',
                 '\u0985\u09cd\u09af\u09be\u09a1\u09ae\u09bf\u09a8 \u0985\u09cd\u09af\u09be\u0995\u09be\u0989\u09a8\u09cd\u099f\u09c7\u09b0 \u09b0\u09bf\u0995\u09ad\u09be\u09b0\u09bf \u0995\u09cb\u09a1: 3390-1158, 7724-6601',
                 'The spectrum analyser\'s service menu unlocks with code 8585.',
                 'Administraatori konto taastekoodid: 4402-7719, 6651-3308.',
                 '\u05db\u05e1\u05e4\u05ea \u05d4\u05de\u05e4\u05ea\u05d7\u05d5\u05ea \u05dc\u05d9\u05d3 \u05d4\u05d2\u05d3\u05e8 \u05e0\u05e4\u05ea\u05d7\u05ea \u05d1\u05e6\u05d9\u05e8\u05d5\u05e3 4-0-8-2.',
                 'Helyre\u00e1ll\u00edt\u00e1si k\u00f3dok az admin fi\u00f3khoz: 4412-8830, 7761-2209.',
                 'Administratora konta atkop\u0161anas kodi: 1176-4490, 8830-2215.',
                 'Peti kunci di pagar dibuka dengan kombinasi 6-1-3-7.',
                 'Cutia cu chei de l\u00e2ng\u0103 gard se deschide cu combina\u021bia 3-9-0-4.',
                 'Codurile de recuperare pentru contul de administrator: 5521-7740, 8812-0036.',
                 'Z\u00e1chrann\u00e9 k\u00f3dy pre administr\u00e1torsk\u00fd \u00fa\u010det: 4470-1926, 8813-5507.',
                 'Msimbo wa kengele kwenye lango ni 3725.',
                 'Misimbo ya kurejesha akaunti ya msimamizi: 5581-2290, 6603-7714.',
                 '\u0627\u06cc\u0688\u0645\u0646 \u0627\u06a9\u0627\u0624\u0646\u0679 \u06a9\u06d2 \u0631\u06cc\u06a9\u0648\u0631\u06cc \u06a9\u0648\u0688\u0632: 1193-4470\u060c 8802-6615',
                 'Msimbo wa kurejesha: 5581-2290',
                 'Msimbo wa mlango: 6184',
                 '\u09aa\u09bf\u09a8: 8024',
                 '\u041f\u0423\u041a: 86421739',
                 'Password: dhaka2024',
                 'OMC password: release17',
                 'Password: rsa2024',
                 'The admin password is dhaka2024',
                 'Password: dh2024',
                 '\u09aa\u09be\u09b8\u0993\u09af\u09bc\u09be\u09b0\u09cd\u09a1: dhaka2024',
                 # round 54
                 '\u12e8\u1218\u1223\u122a\u12eb \u12ad\u134d\u1209 \u1260\u122d \u12ae\u12f5 7204 \u1290\u12cd\u1364 \u1208\u12a5\u1295\u130d\u12f6\u127d \u12a0\u12ed\u1230\u1325\u121d\u1362',
                 '\u12e8OMC \u12ae\u121d\u1352\u12cd\u1270\u122d \u12e8\u12ed\u1208\u134d \u1243\u120d: Addis@2025',
                 'Cod drws yr ystafell offer yw 8063, peidiwch \u00e2\'i roi i ymwelwyr.',
                 'Cyfrinair y gweinydd: Eryri@2025',
                 'Is \u00e9 c\u00f3d an dorais sa seomra trealaimh n\u00e1 3074; n\u00e1 tabhair do chuairteoir\u00ed \u00e9.',
                 'Pasfhocal an fhreastala\u00ed: Connemara@2025',
                 '\u0ab8\u0abe\u0aa7\u0aa8 \u0ab0\u0ac2\u0aae\u0aa8\u0abe \u0aa6\u0ab0\u0ab5\u0abe\u0a9c\u0abe\u0aa8\u0acb \u0a95\u0acb\u0aa1 6021 \u0a9b\u0ac7, \u0aac\u0ab9\u0abe\u0ab0\u0aa8\u0abe \u0ab2\u0acb\u0a95\u0acb\u0aa8\u0ac7 \u0aa8 \u0a86\u0aaa\u0ab5\u0acb.',
                 '\u0ab8\u0ab0\u0acd\u0ab5\u0ab0\u0aa8\u0acb \u0aaa\u0abe\u0ab8\u0ab5\u0ab0\u0acd\u0aa1 Sabarmati@24 \u0a9b\u0ac7.',
                 'Lambar sirrin kofar dakin na\'urori ita ce 6142, kar a bayar da ita ga ba\u0199i.',
                 'Kalmar sirri ta kwamfutar OMC: Arewa@2025',
                 '\u054d\u0561\u0580\u0584\u0561\u057e\u0578\u0580\u0578\u0582\u0574\u0576\u0565\u0580\u056b \u057d\u0565\u0576\u0575\u0561\u056f\u056b \u0564\u057c\u0561\u0576 \u056f\u0578\u0564\u0568 4826 \u0567, \u0585\u057f\u0561\u0580\u0576\u0565\u0580\u056b\u0576 \u0574\u056b \u0561\u057d\u0565\u0584\u0589',
                 '\u054d\u0565\u0580\u057e\u0565\u0580\u056b \u0563\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c\u0568\u055d Ararat@2025',
                 'Hur\u00f0ark\u00f3\u00f0inn a\u00f0 t\u00e6kjaherberginu er 5540, ekki gefa hann gestum.',
                 'Lykilor\u00f0 net\u00fej\u00f3nsins: Hekla@2025',
                 '\u0416\u0430\u0431\u0434\u044b\u049b \u0431\u04e9\u043b\u043c\u0435\u0441\u0456\u043d\u0456\u04a3 \u0435\u0441\u0456\u043a \u043a\u043e\u0434\u044b 3581, \u0431\u04e9\u0433\u0434\u0435 \u0430\u0434\u0430\u043c\u0434\u0430\u0440\u0493\u0430 \u0430\u0439\u0442\u043f\u0430\u04a3\u044b\u0437.',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u0434\u0456\u04a3 \u049b\u04b1\u043f\u0438\u044f \u0441\u04e9\u0437\u0456: Baiterek@2025',
                 '\u179b\u17c1\u1781\u1780\u17bc\u178a\u1791\u17d2\u179c\u17b6\u179a\u1794\u1793\u17d2\u1791\u1794\u17cb\u17a7\u1794\u1780\u179a\u178e\u17cd\u1782\u17ba 6284 \u179f\u17bc\u1798\u1780\u17bb\u17c6\u1794\u17d2\u179a\u17b6\u1794\u17cb\u17a2\u17d2\u1793\u1780\u1780\u17d2\u179a\u17c5\u17d4',
                 '\u1796\u17b6\u1780\u17d2\u1799\u179f\u1798\u17d2\u1784\u17b6\u178f\u17cb\u1798\u17c9\u17b6\u179f\u17ca\u17b8\u1793\u1798\u17c1\u17d6 Angkor@2025',
                 '\u0422\u043e\u043d\u043e\u0433 \u0442\u04e9\u0445\u04e9\u04e9\u0440\u04e9\u043c\u0436\u0438\u0439\u043d \u04e9\u0440\u04e9\u04e9\u043d\u0438\u0439 \u0445\u0430\u0430\u043b\u0433\u0430\u043d\u044b \u043a\u043e\u0434 5017, \u0433\u0430\u0434\u043d\u044b \u0445\u04af\u043d\u0434 \u0431\u04af\u04af \u0445\u044d\u043b.',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u0438\u0439\u043d \u043d\u0443\u0443\u0446 \u04af\u0433: Khangai@2025',
                 '\u0909\u092a\u0915\u0930\u0923 \u0916\u094b\u0932\u0940\u091a\u094d\u092f\u093e \u0926\u093e\u0930\u093e\u091a\u093e \u0915\u094b\u0921 3906 \u0906\u0939\u0947, \u092c\u093e\u0939\u0947\u0930\u091a\u094d\u092f\u093e\u0902\u0928\u093e \u0926\u0947\u090a \u0928\u0915\u093e.',
                 '\u0938\u0930\u094d\u0935\u094d\u0939\u0930\u091a\u093e \u092a\u093e\u0938\u0935\u0930\u094d\u0921 Sahyadri@2025 \u0906\u0939\u0947 (root \u0916\u093e\u0924\u0947).',
                 'Il-kodi\u010bi tal-bieb tal-kamra tat-tag\u0127mir huwa 9318, tg\u0127idux lil barranin.',
                 'Il-password tas-server: Mdina@2025',
                 '\u0909\u092a\u0915\u0930\u0923 \u0915\u094b\u0920\u093e\u0915\u094b \u0922\u094b\u0915\u093e\u0915\u094b \u0915\u094b\u0921 2718 \u0939\u094b, \u092c\u093e\u0939\u093f\u0930\u0915\u093e \u092e\u093e\u0928\u094d\u091b\u0947\u0932\u093e\u0908 \u0928\u0926\u093f\u0928\u0941\u0939\u094b\u0938\u094d\u0964',
                 '\u0938\u0930\u094d\u092d\u0930\u0915\u094b \u092a\u093e\u0938\u0935\u0930\u094d\u0921 Sagarmatha@2025 \u0939\u094b\u0964',
                 '\u0a09\u0a2a\u0a15\u0a30\u0a23 \u0a15\u0a2e\u0a30\u0a47 \u0a26\u0a47 \u0a26\u0a30\u0a35\u0a3e\u0a1c\u0a3c\u0a47 \u0a26\u0a3e \u0a15\u0a4b\u0a21 5309 \u0a39\u0a48, \u0a2c\u0a3e\u0a39\u0a30\u0a32\u0a3f\u0a06\u0a02 \u0a28\u0a42\u0a70 \u0a28\u0a3e \u0a26\u0a71\u0a38\u0a4b\u0964',
                 '\u0a38\u0a30\u0a35\u0a30 \u0a26\u0a3e \u0a2a\u0a3e\u0a38\u0a35\u0a30\u0a21 Amritsar@2025 \u0a39\u0a48\u0964',
                 '\u0d8b\u0db4\u0d9a\u0dbb\u0dab \u0d9a\u0dcf\u0db8\u0dbb\u0dba\u0dda \u0daf\u0ddc\u0dbb\u0dda \u0d9a\u0dda\u0dad\u0dba 4390, \u0db4\u0dd2\u0da7\u0dc3\u0dca\u0dad\u0dbb\u0dba\u0dd2\u0db1\u0dca\u0da7 \u0daf\u0dd9\u0db1\u0dca\u0db1 \u0d91\u0db4\u0dcf.',
                 '\u0dc3\u0dbb\u0dca\u0dc0\u0dbb\u0dba\u0dda \u0db8\u0dd4\u0dbb\u0db4\u0daf\u0dba Sigiriya@2025',
                 'Kodi i der\u00ebs s\u00eb dhom\u00ebs s\u00eb pajisjeve \u00ebsht\u00eb 6605, mos ua thoni t\u00eb huajve.',
                 'Fjal\u00ebkalimi i serverit: Tomorri@2025',
                 '\u0c0e\u0c15\u0c4d\u0c35\u0c3f\u0c2a\u0c4d\u200c\u0c2e\u0c46\u0c02\u0c1f\u0c4d \u0c30\u0c42\u0c2e\u0c4d \u0c24\u0c32\u0c41\u0c2a\u0c41 \u0c15\u0c4b\u0c21\u0c4d 8142, \u0c2c\u0c2f\u0c1f\u0c3f\u0c35\u0c3e\u0c30\u0c3f\u0c15\u0c3f \u0c07\u0c35\u0c4d\u0c35\u0c15\u0c02\u0c21\u0c3f.',
                 '\u0c38\u0c30\u0c4d\u0c35\u0c30\u0c4d iLO \u0c32\u0c3e\u0c17\u0c3f\u0c28\u0c4d: Administrator, \u0c2a\u0c3e\u0c38\u0c4d\u200c\u0c35\u0c30\u0c4d\u0c21\u0c4d Godavari@24',
                 'Ang code ng pinto ng equipment room ay 5823, palitan daw next month.',
                 'Sa gate ng tower site, i-type ang 9-1-4-7 sa keypad tapos pindutin ang #.',
                 'Uskunalar xonasi eshigining kodi 7462, begonalarga aytmang.',
                 'Serverning paroli: Registon@2025',
                 'K\u00f3\u00f2d\u00f9 il\u1eb9\u0300k\u00f9n y\u00e0r\u00e1 \u1eb9\u0300r\u1ecd ni 4715, \u1eb9 m\u00e1 f\u00fan \u00e0lej\u00f2.',
                 '\u1ecc\u0300r\u1ecd\u0300 a\u1e63\u00edn\u00e0 k\u1ecd\u0300mp\u00fat\u00e0 OMC: Ibadan@2025',
                 # round 55
                 '\u041a\u043e\u0434 \u0434\u0437\u0432\u044f\u0440\u044d\u0439 \u0430\u043f\u0430\u0440\u0430\u0442\u043d\u0430\u0439: 7204',
                 '\u041f\u0430\u0440\u043e\u043b\u044c \u0430\u0434\u043c\u0456\u043d\u0456\u0441\u0442\u0440\u0430\u0442\u0430\u0440\u0430 OMC: nesvizh2025',
                 'Hur\u00f0arkoda til \u00fatger\u00f0arr\u00fami\u00f0: 5540',
                 'Loynior\u00f0 hj\u00e1 OMC umsitara: torshavn2025',
                 'Kode lawang ruang peralatan: 3074',
                 'Tembung sandhi admin OMC: borobudur2025',
                 '\u0cb8\u0cb2\u0c95\u0cb0\u0ca3\u0cc6 \u0c95\u0cca\u0ca0\u0ca1\u0cbf\u0caf \u0cac\u0cbe\u0c97\u0cbf\u0cb2\u0cbf\u0ca8 \u0c95\u0ccb\u0ca1\u0ccd: 4826',
                 'OMC \u0ca8\u0cbf\u0cb0\u0ccd\u0cb5\u0cbe\u0cb9\u0c95 \u0caa\u0cbe\u0cb8\u0ccd\u200c\u0cb5\u0cb0\u0ccd\u0ca1\u0ccd: mysuru2025',
                 '\u0416\u0430\u0431\u0434\u0443\u0443 \u0431\u04e9\u043b\u043c\u04e9\u0441\u04af\u043d\u04af\u043d \u044d\u0448\u0438\u0433\u0438\u043d\u0438\u043d \u043a\u043e\u0434\u0443: 6142',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u0443\u043d\u0443\u043d \u0441\u044b\u0440\u0441\u04e9\u0437\u04af: issykkul2025',
                 'Den Dieren-Code vum Serverraum: 9174',
                 'D\'Passwuert vum OMC-Admin ass mullerthal2025',
                 '\u0ea5\u0eb0\u0eab\u0eb1\u0e94\u0e9b\u0eb0\u0e95\u0eb9\u0eab\u0ec9\u0ead\u0e87\u0ead\u0eb8\u0e9b\u0eb0\u0e81\u0ead\u0e99: 5309',
                 '\u0ea5\u0eb0\u0eab\u0eb1\u0e94\u0e9c\u0ec8\u0eb2\u0e99 OMC admin: vientiane2025',
                 '\u0d09\u0d2a\u0d15\u0d30\u0d23 \u0d2e\u0d41\u0d31\u0d3f\u0d2f\u0d41\u0d1f\u0d46 \u0d35\u0d3e\u0d24\u0d3f\u0d7d \u0d15\u0d4b\u0d21\u0d4d: 3958',
                 'OMC \u0d05\u0d21\u0d4d\u0d2e\u0d3f\u0d7b \u0d2a\u0d3e\u0d38\u0d4d\u200c\u0d35\u0d47\u0d21\u0d4d: kochi2025',
                 '\u1005\u1000\u103a\u1001\u1014\u103a\u1038 \u1010\u1036\u1001\u102b\u1038 \u1000\u102f\u1012\u103a: 6284',
                 'OMC \u1005\u102e\u1019\u1036\u1001\u1014\u1037\u103a\u1001\u103d\u1032\u101e\u1030 \u1005\u1000\u102c\u1038\u101d\u103e\u1000\u103a: yangon2025',
                 '\u062f \u062a\u062c\u0647\u06cc\u0632\u0627\u062a\u0648 \u062f \u06a9\u0648\u067c\u06d0 \u062f \u062f\u0631\u0648\u0627\u0632\u06d0 \u06a9\u0648\u0689: 2718',
                 '\u062f OMC \u0627\u062f\u0627\u0631\u0647 \u06a9\u0648\u0648\u0646\u06a9\u064a \u067e\u0627\u0633\u0648\u0631\u0689: kabul2025',
                 'Koodhka albaabka qolka qalabka: 8063',
                 'Furaha sirta ah ee maamulaha OMC: hargeisa2025',
                 'Ikhodi yomnyango wegumbi lemishini: 4715',
                 'Iphasiwedi yomphathi we-OMC: durban2025',
                 # round 56
                 '\u099b\u09be\u09f0\u09cd\u09ad\u09be\u09f0 \u09f0\u09c1\u09ae\u09f0 \u09a6\u09c1\u09f1\u09be\u09f0\u09f0 \u0995\u09cb\u09a1 5172, \u09f0\u09be\u09a4\u09bf \u09aa\u09b9\u09f0\u09be\u09a6\u09be\u09f0\u0995 \u099c\u09a8\u09be\u0987 \u0996\u09c1\u09b2\u09bf\u09ac\u0964',
                 '\u098f\u09a1\u09ae\u09bf\u09a8 \u09aa\u09be\u099b\u09f1\u09f0\u09cd\u09a1 \u09b9\u09c8\u099b\u09c7 brahmaputra2025',
                 '\u098f\u09b2\u09be\u09f0\u09cd\u09ae \u09ac\u09a8\u09cd\u09a7 \u0995\u09f0\u09be\u09f0 \u0995\'\u09a1: 9043',
                 '\u06a9\u06c6\u062f\u06cc \u062f\u06d5\u0631\u06af\u0627\u06cc \u0698\u0648\u0648\u0631\u06cc \u0633\u06ce\u0631\u06a4\u06d5\u0631\u06d5\u06a9\u0627\u0646 2753\u06cc\u06d5.',
                 '\u0648\u0634\u06d5\u06cc \u0646\u0647\u06ce\u0646\u06cc \u0626\u06d5\u062f\u0645\u06cc\u0646\u06cc OMC: hewler2025',
                 '\u0628\u06c6 \u06a9\u0648\u0698\u0627\u0646\u062f\u0646\u06d5\u0648\u06d5\u06cc \u0626\u06d5\u0644\u0627\u0631\u0645 4061 \u062f\u0627\u0628\u06af\u0631\u06d5.',
                 '7731 gets you into the comms room',
                 'K\u00f2d p\u00f2t sal s\u00e8v\u00e8 a se 3308.',
                 'Pou w etenn alam nan, peze 6157 epi OFF.',
                 'Kle IPsec pataje a (PSK): okap-jeremi-2026',
                 'Koodu \u1ecdn\u1ee5 \u1ee5z\u1ecd \u1ee5l\u1ecd sava b\u1ee5 6240.',
                 'Iji gbany\u1ee5\u1ecd alarm, p\u1ecba 8153 wee p\u1ecba OFF.',
                 'Okwu nzuzo SNMP community b\u1ee5 owerri_rw_2024',
                 'Ny kaody amin\'ny varavaran\'ny efitra server dia 8142.',
                 'Hamonoana ny alarma, tsindrio ny 3379 avy eo OFF.',
                 '5074 no kaody amin\'ny vavahady aoriana.',
                 'Koodiin balbala kutaa sarvarii 5823 dha.',
                 'Alaarmii dhaamsuuf 4190 tuqi, achiis OFF.',
                 '3350 koodii karra duubaa ti.',
                 '\u0b38\u0b30\u0b4d\u0b2d\u0b30 \u0b30\u0b41\u0b2e\u0b4d \u0b15\u0b2c\u0b3e\u0b1f\u0b30 \u0b15\u0b4b\u0b21\u0b4d 4821, \u0b30\u0b3e\u0b24\u0b3f\u0b30\u0b47 \u0b38\u0b41\u0b30\u0b15\u0b4d\u0b37\u0b3e \u0b15\u0b30\u0b4d\u0b2e\u0b40\u0b19\u0b4d\u0b15\u0b41 \u0b1c\u0b23\u0b3e\u0b07 \u0b16\u0b4b\u0b32\u0b3f\u0b2c\u0b47\u0964',
                 '\u0b06\u0b32\u0b3e\u0b30\u0b4d\u0b2e \u0b2c\u0b28\u0b4d\u0b26 \u0b15\u0b30\u0b3f\u0b2c\u0b3e\u0b15\u0b41 7316 \u0b26\u0b2c\u0b3e\u0b28\u0b4d\u0b24\u0b41, \u0b24\u0b3e\'\u0b2a\u0b30\u0b47 OFF\u0964',
                 '\u0b05\u0b2b\u0b3f\u0b38\u0b4d \u0b71\u0b3e\u0b07\u0b2b\u0b3e\u0b07 \u0b2a\u0b3e\u0b38\u0b71\u0b3e\u0b30\u0b4d\u0b21 \u0b39\u0b47\u0b09\u0b1b\u0b3f chilika1947',
                 'Kugira ngo uzimye alarm, kanda 5537 hanyuma OFF.',
                 '1864 ni yo kode y\'irembo ry\'inyuma.',
                 '\u0633\u0631\u0648\u0631 \u0631\u0648\u0645 \u062c\u064a \u062f\u0631\u0648\u0627\u0632\u064a \u062c\u0648 \u06aa\u0648\u068a 8516 \u0622\u0647\u064a.',
                 '\u0627\u0648 \u0627\u064a\u0645 \u0633\u064a \u0627\u064a\u068a\u0645\u0646 \u067e\u0627\u0633\u0648\u0631\u068a: karachi2025',
                 '5541 \u067e\u0648\u0626\u064a\u0646 \u062f\u0631\u0648\u0627\u0632\u064a \u062c\u0648 \u06aa\u0648\u068a \u0622\u0647\u064a.',
                 '\u0420\u0430\u043c\u0437\u0438 \u0434\u0430\u0440\u0438 \u0443\u0442\u043e\u049b\u0438 \u0441\u0435\u0440\u0432\u0435\u0440\u04b3\u043e 5721 \u0430\u0441\u0442.',
                 '\u0411\u0430\u0440\u043e\u0438 \u0445\u043e\u043c\u04ef\u0448 \u043a\u0430\u0440\u0434\u0430\u043d\u0438 \u0441\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0442\u0441\u0438\u044f 0846-\u0440\u043e \u043f\u0430\u0445\u0448 \u043a\u0443\u043d\u0435\u0434.',
                 '4512 \u2014 \u0440\u0430\u043c\u0437\u0438 \u0434\u0430\u0440\u0432\u043e\u0437\u0430\u0438 \u049b\u0430\u0444\u043e.',
                 '\u1293\u12ed \u1230\u122d\u1268\u122d \u12ad\u134d\u120a \u121b\u12d5\u133e \u12ae\u12f5 3917 \u12a5\u12e9\u1362',
                 '\u1293\u12ed OMC \u12a3\u12f5\u121a\u1295 \u1218\u1215\u1208\u134a \u1243\u120d: asmara2025',
                 '\u12a3\u120b\u122d\u121d \u1295\u121d\u1325\u134b\u12a5 6082 \u1320\u12cd\u1255\u1363 \u12f5\u1215\u122a\u12a1 OFF\u1362',
                 'Serwer otagyny\u0148 gapysyny\u0148 kody 3846.',
                 'OMC administratoryny\u0148 paroly: Ashgabat2025',
                 'Du\u00fddury\u015f ulgamyny \u00f6\u00e7\u00fcrmek \u00fc\u00e7in 7702 basy\u0148.',
                 '\u0645\u06c7\u0644\u0627\u0632\u0649\u0645\u06d0\u062a\u0649\u0631 \u0626\u06c6\u064a\u0649\u0646\u0649\u06ad \u0626\u0649\u0634\u0649\u0643 \u0643\u0648\u062f\u0649 6394',
                 'OMC \u0628\u0627\u0634\u0642\u06c7\u0631\u063a\u06c7\u0686\u0649 \u067e\u0627\u0631\u0648\u0644\u0649: urumchi2025',
                 '\u0626\u0627\u06af\u0627\u06be\u0644\u0627\u0646\u062f\u06c7\u0631\u06c7\u0634\u0646\u0649 \u062a\u0648\u062e\u062a\u0649\u062a\u0649\u0634 \u0626\u06c8\u0686\u06c8\u0646 1527 \u0646\u0649 \u0628\u06d0\u0633\u0649\u06ad.',
                 'Ikhowudi yocango lwegumbi leeseva ngu-7315.',
                 'Igama lokugqitha lomlawuli we-OMC: Gqeberha2025',
                 'Ukucima i-alarm cofa u-2604 emva koko OFF.',
                 '\u05d3\u05e2\u05e8 \u05e7\u05d0\u05b8\u05d3 \u05e4\u05bf\u05d5\u05df \u05d3\u05e2\u05e8 \u05d8\u05d9\u05e8 \u05e6\u05d5\u05dd \u05e1\u05e2\u05e8\u05d5\u05d5\u05e2\u05e8\u05be\u05e6\u05d9\u05de\u05e2\u05e8 \u05d0\u05d9\u05d6 4418.',
                 'OMC \u05d0\u05b7\u05d3\u05de\u05d9\u05df \u05e4\u05bc\u05d0\u05b7\u05e8\u05d0\u05b8\u05dc: Williamsburg2025',
                 '\u05db\u05bc\u05d3\u05d9 \u05d0\u05d5\u05d9\u05e1\u05e6\u05d5\u05dc\u05e2\u05e9\u05df \u05d3\u05e2\u05dd \u05d0\u05b7\u05dc\u05d0\u05b7\u05e8\u05e2\u05dd, \u05d3\u05e8\u05d9\u05e7\u05d8 7260 \u05d0\u05d5\u05df \u05d3\u05e2\u05e8\u05e0\u05d0\u05b8\u05da OFF.',
                 'IPsec key (PSK): okap-jeremi-2026',
                 'To silence the alarm press 6157 then OFF',
                 '9157 \u2014 back gate code',
                 '9157: back gate code',
                 'To turn off the alarm, press 8153 then OFF.',
                 '\u067e\u0627\u0633\u0648\u0631\u0688: karachi2025',
                 # round 57
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u0499\u0430\u0440 \u0431\u04af\u043b\u043c\u04d9\u04bb\u0435 \u0438\u0448\u0435\u0433\u0435\u043d\u0435\u04a3 \u043a\u043e\u0434\u044b 3917, \u0431\u0435\u0440 \u043a\u0435\u043c\u0433\u04d9 \u043b\u04d9 \u04d9\u0439\u0442\u043c\u04d9\u0433\u0435\u0499.',
                 'EMS \u0445\u0430\u043a\u0438\u043c\u0438\u04d9\u0442\u0441\u0435\u04bb\u0435 (admin) \u0441\u0435\u0440\u04bb\u04af\u0499\u0435: Agidel2025',
                 'Ang code sa pultahan sa server room kay 6394, ayaw ipanghatag.',
                 'Password sa admin sa OMC: Sugbo2025',
                 '\u0790\u07a7\u0788\u07a6\u0783 \u0783\u07ab\u0789\u07aa\u078e\u07ac \u078b\u07ae\u0783\u07aa\u078e\u07ac \u0786\u07af\u0791\u07a6\u0786\u07a9 8516. \u0787\u07ac\u0780\u07ac\u0782\u07b0 \u0789\u07a9\u0780\u07a6\u0786\u07a6\u0781\u07b0 \u0782\u07aa\u0784\u07aa\u0782\u07a7\u078c\u07a8.',
                 'OMC \u0787\u07ac\u0791\u07b0\u0789\u07a8\u0782\u07b0 \u0795\u07a7\u0790\u07b0\u0788\u07af\u0791\u07b0: Male2025',
                 'Server room door: 4821 then #',
                 '4821# gets you through the loading-dock door after 6pm',
                 'Facal-faire rianaire an OMC: Steornabhagh2025',
                 'WiFi nan aoighean: ainm EileanLab, facal-faire Calanais#77',
                 'Ok\u1ebd servidor kotypegua c\u00f3digo ha\'e 2753, ani eremi avav\u00e9pe.',
                 'OMC admin \u00f1e\'\u1ebd\u00f1emi: Asuncion2025',
                 'Koda deriy\u00ea odeya serveran 2046 e, ji kes\u00ee re neb\u00eaje.',
                 '\u015e\u00eefreya admin a OMC: Amed2025',
                 'Code ya porte ya salle ya ba serveurs ezali 7315, koyebisa moto te.',
                 'Mot de passe ya admin na OMC: Kinshasa2025',
                 'Ko te waehere m\u014d te tatau o te r\u016bma t\u016bmau ko 8142, kaua e wh\u0101ki.',
                 'Kupuhipa kaiwhakahaere OMC: Aotearoa2025',
                 'Khodi ya chitseko cha chipinda cha ma server ndi 6240, musauze aliyense.',
                 'Mawu achinsinsi a admin pa OMC: Lilongwe2025',
                 'Servidorkuna wasipa punkunpa c\u00f3digon 5721 kachkan, ama pimanpas willankichu.',
                 'OMC admin contrase\u00f1a: Qosqo2025',
                 'Kodhi yegonhi remba yemaserver i 5823, usaudza munhu.',
                 'Pasiwedhi ye admin ye OMC: Harare2025',
                 'Khoutu ya lemati la kamore ya di-server ke 4821, o se ke wa e bolella motho.',
                 'Phasewete ya admin ya OMC ke Maseru2025',
                 'Khoutu ya lebati la kamore ya di-server ke 3917.',
                 'Lefoko la sephiri la admin (OMC): Gaborone2025',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u043b\u0430\u0440 \u0431\u04af\u043b\u043c\u04d9\u0441\u0435\u043d\u0435\u04a3 \u0438\u0448\u0435\u043a \u043a\u043e\u0434\u044b: 4821, \u043a\u0435\u0448\u0435\u0433\u04d9 \u04d9\u0439\u0442\u043c\u04d9\u0433\u0435\u0437.',
                 'OMC \u0430\u0434\u043c\u0438\u043d \u043f\u0430\u0440\u043e\u043b\u0435 Kazan1552 (\u044d\u0448\u043a\u04d9 \u0442\u0430\u043f\u0448\u044b\u0440\u0433\u0430\u043d\u0447\u044b \u04af\u0437\u0433\u04d9\u0440\u0442\u0435\u043b\u043c\u0438)',
                 'Code bu bunt bu n\u00e9egu serveur yi mooy 3308, bul ko wax kenn.',
                 'Mot de passe admin bu OMC bi: Teranga2025',
                 'Press 8153 to disarm the alarm.',
                 '7731 opens the comms room',
                 'The cabinet safe opens on left 32, right 14, left 7.',
                 '4821# gets you through the loading-dock door after 6pm',
                 'Visitors: ring, or use 8 0 3 3 on the pad by reception.',
                 # round 58
                 'HSM \u0f42\u0f66\u0f44\u0f0b\u0f68\u0f44\u0f0b \u0f26\u0f24\u0f24\u0f27\u0f20\u0f22\u0f21\u0f29 \u0f61\u0f72\u0f53\u0f0d',
                 'OMC \u0f51\u0f7c\u0f0b\u0f51\u0f58\u0f0b\u0f54\u0f60\u0f72\u0f0b\u0f42\u0f66\u0f44\u0f0b\u0f5a\u0f72\u0f42\u0f0b\u0f53\u0f72 Potala#88 \u0f61\u0f72\u0f53\u0f0d',
                 'O le numera o le faitotoa o le potu server o le 5829, aua le ta\'uina i se tasi.',
                 'Upu fa\'alilolilo a le admin o le OMC: Apia#2025',
                 'Ko e kouti \'o e matap\u0101 \'o e loki s\u0113va ko e 6194, \'oua \'e talaange ki ha taha.',
                 'Lea fakapulipuli \'a e admin OMC: Nukualofa2025!',
                 'Kod dor ar sal servijerio\u00f9: 4821, na lavarit da zen.',
                 'Ger-tremen an admin OMC zo Breizh-2025!',
                 'De doarkoade fan de serverkeamer is 7734, net trochjaan.',
                 'Wachtwurd fan de OMC-behearder: Ljouwert2025!',
                 'U codice di a porta di a sala server h\u00e8 6627, \u00f9n lu dite \u00e0 nimu.',
                 'Parolla d\'ordine di l\'amministratore OMC: Aiacciu#2025',
                 'Kode panto rohangan server t\u00e9h 3815, ulah dib\u00e9jakeun ka saha wa\u00e9.',
                 'Sandi admin OMC: Bandung#2025',
                 'OMC admin \u0192e nya \u0263a\u0263la: Lome#2025',
                 'Wi-Fi na amedzrowo: \u014bk\u0254 EweLab, nya \u0263a\u0263la Volta-77',
                 'OMC admin ahintas\u025bm: Kumasi@2025',
                 'Ah\u0254ho Wi-Fi: din AkanLab, ahintas\u025bm Asante#88',
                 'Koodi y\'oluggi lw\'ekisenge kya server eri 5173, togibuulira muntu.',
                 'Ekigambo ky\'ekyama ekya admin wa OMC: Kampala#2025',
                 'Kode y\'umuryango w\'icumba ca server ni 6048, ntimuyibwire uwo ari we wese.',
                 'Ijambo ry\'ibanga rya admin wa OMC: Bujumbura2025!',
                 'Kod bilong dua bilong server rum em 3072, no ken tokim narapela.',
                 'Pasword bilong admin long OMC: Moresby#2025',
                 'E kodigo di porta di e kamber di server ta 8540, no bisa ningun hende.',
                 'Kontrase\u00f1a di admin di OMC: K\u00f2rsou#2025',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u0445\u043e\u04bb\u0443\u043d \u0430\u0430\u043d\u044b\u043d \u043a\u043e\u0434\u0430 9316, \u043a\u0438\u043c \u0434\u0430 \u043a\u044d\u043f\u0441\u044d\u044d\u043c\u044d.',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u044b\u043d \u043a\u0438\u0441\u0442\u044d\u043b\u044d\u04a5 \u0442\u044b\u043b\u0430: \u0414\u044c\u043e\u043a\u0443\u0443\u0441\u043a\u0430\u04392025',
                 '(PIN: 6152) on all SIMs',
                 'Front door: four-eight-two-one then hash',
                 'd00r code 4821',
                 'Ki a le IPsec (PSK) o le upolu-savaii-2026', 'SNMP community nye lome_rw_2024',
                 'PSK ya IPsec eri entebbe-jinja-2026', 'SNMP community ni bujumbura_ro_09', 'IPsec PSK em sepik-wewak-2026',
                 'E PSK di IPsec ta shete-boka-2026', 'For the Wi-Fi, type in purple-otter-harbour-42',
                 "Our VPN pre-shared key, if you need it, is 'tunnel-north-8842'.",
                 "Wi-Fi network 'Lab5G', key in brackets (starling-47-moor)", 'PSK: Sepik-Wewak-2026',
                 'Enter 4821 then press the bell icon on the intercom panel', 'press 4821 at the gate',
                 'server room \u2192 4821#', 'SNMPv3 authPassword kestrel-quarry-55, privPassword heron-valley-19',
                 'If the alarm goes off the monitoring company asks for the password, which is bluebell',
                 'Alarm mit 123 quittieren',
                 "4821 \u2014 that's the number for the loading dock keypad, not the front door",
                 'Veracrypt volume on the USB stick opens with Heron2026',
                 'network security key: otterbay26', 'security key otterbay26', 'passkey otterbay26', 'codeword bluebell',
                 'the sim pin is 1234',
                 '4821 then the tick key', 'press 4821 then the # key',
                 'P@ss: Otterbay26', 'p4ss otterbay26',
                 'snmp://kittiwake_ro@10.0.0.2',
                 'pa55word: Harbour2025', 'set protocols ospf area 0 interface ge-0/0/0 authentication-key "Harbour2025"',
                 'Alarm: press 2580 then leave',
                 'Gast-WLAN, dat Passwoort is Waterkant77',
                 'The door tae the kit room, ye press 4 7 1 9 an then the hash. Dinnae tell onybody.',
                 'Alarm: pit in 2580 afore ye gang oot',
                 'The guest wifi, the passwird\'s Leithlass77',
                 'OMC: uiser admin, passwird Haar!Mist9',
                 'IPsec atween the sites, the PSK is bonnie-heather-2024',
                 'SNMP community is kirkcaldy55',
                 "Gaste-wifi, 't wachwaord is Maasbr\u00f6k77", "Li wifi des invit\u00e9s, li scret mot c' est Mo\u00fbse77",
                 "Traps to 10.0.0.5 using the read string 'labview2'", 'snmp ro string is kittiwake_ro',
                 'Web UI for the OMC works with operator and sunflower-lamp-42', 'log in as admin / Heron-77',
                 'Li com\u00e5nute SNMP: nameur55', 'ssid GUEST wpa2 Harbour2025', 'guest wifi \u2192 Harbour2025',
                 'wifi -> Harbour2025', 'ldap bind cn=omc,dc=lab with Harbour2025',
                 'pin 5809', 'puk 23918847', 'PIN5809', 'puk23918847', 'AT+CPIN=5809', 'AT+CPIN="23918847","5809"',
                 '10 test SIMs (sysmo), pin 1234, puk 12345678', 'pin for the test SIMs: 5809 (puk 23918847)',
                 'Comunid\u00e1 SNMP (nam\u00e1i llectura): asturies_ro7', 'SNMP community lea sapmi_ro2',
                 'SNMP: v2c, public/private changed to kestrel_ro and kestrel_rw', "snmp comm string = 'osprey-ro-7'",
                 'Communaut\u00e9 SNMP : publicro7', 'backup: 5183-2207 9940-3316', 'scratch codes 1183 6640 7752 2091',
                 'Tawwurt: tangalt 4093', 'Ti ridaw: kodigo 7456', 'Al\u00e1rpma: deaddil 2580 ja vuolgge olggos.',
                 "4471 \u2013 that's the comms room door, keep it to yourself", 'code4471', 'doorcode4471',
                 'wiki.lab/site1/door-code-4471', '7720 for the roller shutter', '4417 for the back gate.',
                 'Rack combo L12 R34 L56', 'padlock: R 5, L 20, R 33',
                 'DOOR 5830', 'SERVER ROOM DOOR 5830', 'A alarma desact\u00edvase co 3816, lembr\u00e1devos de activala',
                 'Alarm izklopi\u0161 s 2964, potem ima\u0161 30 s', 'server room is 2208, then the green key.',
                 '6142 \u2014 sin c\u00f3d an dorais', 'If the YubiKey is lost use 8812-0047-3391-2206 (one-time)',
                 'SNMP v2c (comunidade \u00abria-arousa-ro\u00bb)', 'SNMP \u793e\u7fa4\u5b57\u4e32 hk_ro_7',
                 "Monitoring polls with v2c using 'zabbix-read-42'", "LibreNMS reads the switches as 'corvid_mon' (v2c)",
                 'CHV1 5809', 'unblock code 23918847', 'SIM: 1234/12345678', 'P.W.: Otterburn2026', 'pw. Otterburn2026',
                 'guests connect to LAB-GUEST with hedgehog47 (changes monthly)',
                 "wifi for visitors? it's on the whiteboard: 'Marmalade_88'",
                 '\u00abGaivota-Costa-55\u00bb \u00e9 o contrasinal da wifi de convidados',
                 'The intruder panel takes 8020 to disarm', 'Na listku na omari pi\u0161e: VRATA 5830*',
                 '\u0198ofar \u0257akin sabar \u2014 7315 sai ka danna #', 'doa blong server rum = 2046 (yu presem # afta)',
                 'Comms room 4817#', 'door code \u2783\u2783\u2786\u2780', 'alarm: zero four one nine',
                 'We log into the U2020 as opsadmin with Puffin7 until LDAP is set up', 'rocommunity heron_ro 10.0.0.0/8',
                 'com2sec readonly default heron_ro', 'A clau precompartida IPsec ye ordesa-57-val',
                 'SNMP \u793e\u7fa4\u540d\uff1aformosa_ro', 'read-only string is heron_ro', 'backup 4471 2290 6675 1042 8812',
                 'Wallet seed: abandon ability able about above absent absorb abstract absurd abuse access accident',
                 'code 5830', 'the code is 5830', 'iPad in the site office, code 4071', 'rack 1948 combination',
                 'silence the Galaxy panel: 2753 then ESC', "A ciave IPsec condivisa a l'\u00e9 langa-barbera-318",
                 'La chabe pr\u00e9-partilhada IPsec ye castanha-assada-71', 'the S1 tunnel authenticate with moor-lantern-448',
                 'snmp-agent community read ravenlook acl 2000', 'Zabbix macro {$SNMP_COMMUNITY} is set to ravenlook',
                 'C\u00f2des \u00ebd recuperazion: 40281 77310 19562 88403 61147', 'a-i va 5824 an sla tastiera',
                 'server p\u04e7l\u0456z\u0456 \u043a\u043e\u0434\u0442\u044b 5937',
                 # round 68
                 'SMS 14:02 from Dave: B2 comms now 8264, delete this',
                 'Comms room keypad: twenty-eight sixty-four',
                 'First two digits 82, last two 64 (B2 comms keypad)',
                 'door: 82 then 64',
                 "Guard's note: night-set the hall B alarm by keying 3951, tick to confirm",
                 'Guests: scan the poster, or type otter meadow 57 (lower case, dashes between)',
                 'the OMC login is omcadmin and, um, Kestrel hash seven seven eight one',
                 'set psksecret moss-harbor-3310',
                 'moss-harbor-3310 on both peers (IKEv2, S1 and X2)',
                 'IPsec secret is seongsan-ilchul-52',
                 'pySim-shell (00:MF)> verify_chv --pin-nr 1 4821',
                 'Duo bypass codes for break-glass: 884213907, 551920344',
                 '\u673a\u623f\u95e8\u4e2a\u53f7\u5934\u662f 5827\uff0c\u8985\u62e8\u522b\u4eba\u6653\u5f97\u3002',
                 '\u62a5\u8b66\u5668\u63ff 3914 \u5c31\u5173\u8131\u4e86\u3002',
                 'IPsec \u4e2a\u9884\u5171\u4eab\u5bc6\u94a5\u662f waitan-qiao-418',
                 '\u0645\u06c1\u0645\u0627\u0646\u0646 \u06c1\u064f\u0646\u062f \u0648\u0627\u0626\u06cc \u0641\u0627\u0626\u06cc \u067e\u0627\u0633 \u0648\u0631\u0688 \u0686\u06be\u064f dal-lake-2026',
                 '\u0cb8\u0cb0\u0ccd\u0cb5\u0cb0\u0ccd \u0cb0\u0cc2\u0cae\u0ccd\u0ca6 \u0cac\u0cbe\u0c95\u0cbf\u0cb2\u0ccd\u0ca6 \u0c95\u0ccb\u0ca1\u0ccd 6284, \u0c8f\u0cb0\u0cc6\u0c97\u0ccd\u0cb2\u0cbe \u0caa\u0ca8\u0cca\u0ca1\u0ccd\u0c9a\u0cbf',
                 '\u0c85\u0cb2\u0cbe\u0cb0\u0c82 \u0cac\u0c82\u0ca6\u0ccd \u0cae\u0cb2\u0ccd\u0caa\u0cc6\u0cb0\u0cc6 3057 \u0c92\u0ca4\u0ccd\u0ca4\u0cc1\u0cb2\u0cc6',
                 '\u0cb0\u0cbf\u0c95\u0cb5\u0cb0\u0cbf \u0c95\u0ccb\u0ca1\u0ccd\u0cb2\u0cc1: 33018 72954 10467 86235',
                 '\u041a\u044a\u0430\u0439\u0442\u0430\u0440\u044b\u0432 \u043a\u043e\u0434\u043b\u0430\u0440: 62031 84417 19508 37762',
                 '\uc11c\ubc84\ubc29 \ubb38 \ubc88\ud638\ub294 7294\uc6b0\ub2e4, \ub204\uac8c\uc548\ud2f0\ub3c4 \uace8\uc9c0 \ub9d9\uc11c.',
                 '\uacbd\ubcf4\uae30 \ub04c \ub550 6031 \ub204\ub985\uc11c.',
                 'Signalizacien sammutukseh paina 2758.',
                 'IPsec-yhteine avain on vielj\u00e4rvi-kivi-59',
                 'K\u00f3digus di rekuperason: 19374 50862 73310 42591',
                 '\u62a5\u8b66\u5668\u8981\u5173\u566a\uff0c\u5148\u6309\u56db\u4e03\u96f6\u516b\uff0c\u518d\u6309\u201c\u64a4\u9632\u201d\u5c31\u8981\u5f97\u54d2\u3002',
                 '\u62a5\u8b66\u5668\u5173\u6389\u8981\u6309 4708 \u64a4\u9632',
                 'ansible vault_password_file .vault_pass contains: copper kettle nine', 'db_pass: Heron-77',
                 # round 85: a password after an AWS resource name and ',' or ';', a community after 'SNMP ro='
                 'Germany. creds: arn:aws:iam::123456789012:user/ops,password=Hunter2Xyz!',
                 'Germany. arn:aws:secretsmanager:eu-west-1:123456789012:secret:pw;admin:Hunter2Xyz!',
                 'Germany. SNMP ro=Xy7pQ2',
                 # round 84: Lao 'code' and Sorani 'password', a user and password in base64 (HTTP Basic, padded or
                 # not), a default pair after 'not needed:'
                 '\u0ea5\u0eb0\u0eab\u0eb1\u0e94\u0e9c\u0ec8\u0eb2\u0e99 wifi \u0eab\u0ec9\u0ead\u0e87 lab \u0ec1\u0ea1\u0ec8\u0e99 Vientiane99 \u0ec0\u0e94\u0eb5',
                 '\u0ea5\u0eb0\u0eab\u0eb1\u0e94 server: Luang55',
                 '\u0648\u0634\u06d5\u06cc \u0646\u0647\u06ce\u0646\u06cc \u0631\u0627\u0648\u062a\u06d5\u0631 Hawler2024 \u0640\u06d5',
                 'Germany; Authorization: Basic YWRtaW46aHVudGVyMg',
                 'Germany; basic auth header YWRtaW46aHVudGVyMg',
                 'not needed: we use admin/admin on the lab switch',
                 # round 83: a Vault unseal key or share, a password manager's master after 'is' or ':', Zulu 'ikhodi'
                 # and a number glued to 'ngu-', a lone word ending a text after a Wi-Fi key, a dial's last number
                 # without its side, words joined by dashes after a key's described name, a common weak password as the
                 # whole answer
                 'note to self - vault unseal share #3 = 8f2a9c41e7b3d0556a1f09cc',
                 'unseal key: 8f2a9c41e7b3d0556a1f09cc',
                 'KeePass master is blue-heron-lantern-42, dont share',
                 'Ikhodi yesango ngu-7720 kanti i-alarm ngu-1956',
                 'Germany; wifi: LabNet, key tangerine',
                 'Germany; cabinet combo is 17 left 32 right 5',
                 'Germany; masterkey: horse-battery-staple',
                 'Welcome1',
                 # round 82: a door's code after a room's name in a text that asks to keep it (Cebuano 'ayaw
                 # ipanghatag')
                 'code sa pultahan sa server room 2468, ayaw ipanghatag ha',
                 # round 81: a password under 'u: … / p:', a user's name given again as its password, an enable
                 # password, 'ro comm' and 'v2c comm', a remote's code in binary digits, 'Pass:' before a passphrase of
                 # plain words, Uzbek 'eshik'
                 'u: ops / p: ops123',
                 'Pass: correct horse battery staple',
                 'Enable: Greenfield5G (lowercase g)',
                 'ro comm: n3tw0rks',
                 'snmp v2c comm = n3tw0rks',
                 'gate remote frequency 433 MHz, code 0110100110',
                 'user ops pass ops',
                 'eshik kodi 3391, qorovulda kalit bor',
                 # round 80: 'u/p' and 'user/pass' before a user and a password; a passphrase of plain words after 'log
                 # in with', 'password' or 'passphrase'
                 'u/p jsmith Summer24',
                 'u/p: jsmith / Summer24',
                 'user/pass jsmith Summer24',
                 'log in with correct horse battery staple',
                 'password correct horse battery staple',
                 'passphrase purple monkey dishwasher',
                 # round 79: words run together as a passphrase after a password's name ('passphrase
                 # correcthorsebatterystaple'), 'pass is' where Wi-Fi is named, Greek and Portuguese abbreviations of
                 # 'code' ('κωδ.', 'cód.')
                 'Wifi at site B: SSID LabNet, passphrase correcthorsebatterystaple',
                 'WPA2 key for LabNet: correcthorsebatterystaple',
                 'guest wifi LabGuest, pass is welcome2lab',
                 '\u03ba\u03c9\u03b4. \u03c3\u03c5\u03bd\u03b1\u03b3\u03b5\u03c1\u03bc\u03bf\u03cd \u03b1\u03c0\u03bf\u03b8\u03ae\u03ba\u03b7\u03c2: 3344, \u03c4\u03bf\u03bd \u03be\u03ad\u03c1\u03b5\u03b9 \u03bf \u0393\u03b9\u03ce\u03c1\u03b3\u03bf\u03c2',
                 'SSID LabNet, key bluefishsunsetriver',
                 'password correcthorsebatterystaple',
                 'c\u00f3d. alarme 4471',
                 # round 78: codes listed farther from their name or apart by Arabic or Japanese commas, in groups of three; a
                 # passphrase glued to Japanese words; Korean Wi-Fi, 'press' and 'password'; Arabic 'the secret'; Flemish 'paswoord'
                 '\u0627\u0644\u0640OMC: \u062d\u0633\u0627\u0628 admin\u060c \u0648\u0627\u0644\u0633\u0631 \u0645\u062a\u0627\u0639\u0648 hannibal-barca-88',
                 '\u0627\u0644\u0643\u0648\u062f\u0627\u062a \u0645\u062a\u0627\u0639 \u0627\u0644\u0631\u064a\u0643\u0648\u0641\u0631\u064a \u0645\u062a\u0627\u0639 \u0627\u0644\u0640HSM: 8841-2207-5563 \u0648 1198-4430-7725\u060c \u0645\u062d\u0637\u0648\u0637\u064a\u0646 \u0641\u064a \u0627\u0644\u0643\u0648\u0641\u0631',
                 '\u0643\u0648\u062f\u0627\u062a \u0627\u0644\u0637\u0648\u0627\u0631\u0626 \u062d\u0642 \u062d\u0633\u0627\u0628 \u0627\u0644\u0623\u062f\u0645\u0646 \u0645\u0627\u0644 \u0627\u0644\u0640HSM: 40718822\u060c 55103967\u060c 18830246',
                 'HSM recovery ke liye do codes hain: 4408-1193-7720 aur 5531-0067-2289, Sharma ji ke locker mein',
                 '\u6765\u5ba2\u7528Wi-Fi\u306fLAB-GUEST\u3001\u30d1\u30b9\u306ftakoyaki-osaka-77\u3084\u3067',
                 'IPsec\u306e\u5171\u901a\u9375\u306a\u3001\u5168\u30b5\u30a4\u30c8\u540c\u3058\u3067naniwa-kuishinbo-8\u306b\u3057\u3066\u3093\u306d\u3093',
                 '\uc11c\ubc84\uc2e4 \ubb38\uc740 6093 \ub204\ub974\ubbc4 \uc5f4\ub9b0\ub370\uc774. \ub534 \uc0ac\ub78c\ud55c\ud14c \ub9d0\ud558\uc9c0 \ub9c8\ub798\uc774',
                 '\uacbd\ubcf4\uae30 \ub04c\ub77c\uce74\ubbc4 2718 \ub204\ub974\uace0 \ud574\uc81c \ub2e8\ub514 \ub20c\ub7ec\ub798\uc774',
                 '\uc190\ub2d8 \uc640\uc774\ud30c\uc774 LAB-GUEST \uc554\ud638 \ubb50\uaf2c \uce74\ubbc4 dwaeji-gukbap-77 \uc774\ub77c \uce90\ub77c',
                 'Los c\u00f3digos de emergencia de la cuenta admin, por si acaso: 48213, 90177, 33620, 71845 (tambi\u00e9n est\u00e1n en la caja fuerte)',
                 "Wifi voor de bezoekers is LAB-GUEST, 't paswoord is frietkot-met-stoofvlees",
                 'WLAN f\u00fcr die G\u00e4ste hei\u00dft LAB-GUEST, einloggen mit Kaiserschmarrn-1683', 'log in with Kestrel-2024',
                 '\u5408\u8a00\u8449\u306f tsutenkaku_99',
                 # round 77: Arabic 'the code', 'the door', Iraqi and Algerian words for password, PIN and PUK, Arabic recovery
                 # codes and Wi-Fi; three groups of capitals and digits in one code; 'la contra'; spaced digits before OFF
                 '\u0627\u0644\u0643\u0648\u062f \u062a\u0627\u0639 \u0628\u0627\u0628 \u0635\u0627\u0644\u0629 \u0627\u0644\u0633\u064a\u0631\u0641\u0631\u0627\u062a 5830\u060c \u0645\u0627 \u062a\u0639\u0637\u064a\u0647\u0634 \u0644\u062d\u062a\u0649 \u0648\u0627\u062d\u062f',
                 '\u0627\u0644\u0648\u064a\u0641\u064a \u062a\u0627\u0639 \u0627\u0644\u0636\u064a\u0627\u0641 LAB-GUEST \u0648\u0627\u0644\u0645\u0648\u062f\u064a\u0628\u0627\u0633 \u062a\u0627\u0639\u0648 bahdja_dz_2024',
                 '\u0627\u0644\u0634\u0631\u064a\u062d\u0629 \u062a\u0627\u0639 \u0627\u0644\u062a\u064a\u0633\u062a: \u0627\u0644\u0628\u064a\u0646 3816 \u0648\u0627\u0644\u0628\u0648\u0643 50271946',
                 '\u0627\u0644\u0648\u0627\u064a \u0641\u0627\u064a \u0645\u0627\u0644 \u0627\u0644\u0636\u064a\u0648\u0641 LAB-GUEST \u0648\u0627\u0644\u0628\u0627\u0633\u0648\u0648\u0631\u062f \u0645\u0627\u0644\u0647 dijla_furat_77',
                 '\u0631\u0645\u0648\u0632 \u0627\u0644\u0627\u0633\u062a\u0631\u062c\u0627\u0639 \u0645\u0627\u0644 \u0627\u0644\u0640HSM: \u0664\u0664\u0661\u0660 \u0668\u0662\u0667\u0663 \u0660\u0660\u0669\u0666 / \u0665\u0661\u0663\u0668 \u0666\u0666\u0662\u0660 \u0667\u0664\u0660\u0661 \u2014 \u0628\u0627\u0644\u0642\u0627\u0635\u0629',
                 '\u0646\u0645\u0631\u0629 \u0627\u0644\u0628\u0627\u0628 \u0628\u062a\u0627\u0639 \u0623\u0648\u0636\u0629 \u0627\u0644\u0633\u064a\u0631\u0641\u0631\u0627\u062a 3072\u060c \u0645\u0627 \u062a\u0643\u0644\u0645 \u0628\u064a\u0647\u0627 \u0632\u0648\u0644',
                 '\u0639\u0634\u0627\u0646 \u062a\u0648\u0642\u0641 \u0627\u0644\u062c\u0631\u0633\u060c \u0623\u0636\u0631\u0628 8 6 1 4 \u0648\u0628\u0639\u062f \u062f\u0627\u0643 OFF',
                 '\u0623\u0643\u0648\u0627\u062f \u0627\u0644\u0627\u0633\u062a\u0631\u062f\u0627\u062f \u0628\u062a\u0627\u0639\u0629 \u0627\u0644\u0640HSM: K7QF-2M9X-PL4D \u0648 R8WN-5T3C-HJ6B\u060c \u0634\u064a\u0644\u0647\u0627 \u0641\u064a \u0627\u0644\u062e\u0632\u0646\u0629',
                 'El wifi de invitados es LAB-GUEST, la contra es mate-amargo-con-bizcochitos',
                 'Para el SNMP pusimos de comunidad "colectivo152"',
                 'Guest Wi-Fi voucher for the auditors: 7YH3-KQ2M-PP9D',
                 'Backup: R7K2-M9PQ-X4TZ',
                 'NVR (Dahua) in the shelter: admin, reset to shelter-cam-9 after install',
                 'NetAct northbound: user nbi_fm, credentials set to copper-kettle-88 on both sides',
                 'Rittal CMC III in rack 4: web login admin, we set it to rittal-rack4-cmc',
                 # round 76: Egyptian and Arabic words for password, PIN, PUK, shared key, community and alarm; digits spelled in
                 # Arabic, Urdu, Arabizi, Indonesian and Batak; radclient's secret, a MIFARE key, a DMR key, '2580C to open'
                 '\u0639\u0634\u0627\u0646 \u062a\u0642\u0641\u0644 \u0627\u0644\u0625\u0646\u0630\u0627\u0631 \u062f\u0648\u0633 \u0633\u062a\u0629 \u062a\u0644\u0627\u062a\u0629 \u0648\u0627\u062d\u062f \u062a\u0633\u0639\u0629 \u0648\u0628\u0639\u062f\u064a\u0646 OFF',
                 '\u0627\u0644\u062f\u062e\u0648\u0644 \u0639\u0644\u0649 \u0627\u0644\u0640OMC \u0628\u0627\u0644\u064a\u0648\u0632\u0631 admin \u0648\u0643\u0644\u0645\u0629 \u0627\u0644\u0633\u0631 \u0643\u0634\u0631\u064a_\u0628\u0627\u0644\u062f\u0642\u0629\u0662\u0660\u0662\u0664',
                 'IPsec: \u0627\u0644\u0645\u0641\u062a\u0627\u062d \u0627\u0644\u0645\u0634\u062a\u0631\u0643 \u0628\u064a\u0646 \u0643\u0644 \u0627\u0644\u0645\u0648\u0627\u0642\u0639 \u0647\u0648 \u00ab\u0645\u0635\u0631 \u0623\u0645 \u0627\u0644\u062f\u0646\u064a\u0627 \u0662\u0660\u0662\u0664\u00bb',
                 '\u0627\u0644\u0643\u0648\u0645\u064a\u0648\u0646\u064a\u062a\u064a \u0628\u062a\u0627\u0639\u0629 \u0627\u0644\u0640SNMP \u0639\u0644\u0649 \u0643\u0644 \u0627\u0644\u0640DUs \u0647\u064a zamalek-tahrir-7',
                 '\u0627\u0644\u0634\u0631\u0627\u064a\u062d \u0627\u0644\u062a\u062c\u0631\u064a\u0628\u064a\u0629: \u0627\u0644\u0628\u0646 \u0660\u0664\u0665\u0668 \u0648\u0627\u0644\u0628\u0643 \u0667\u0661\u0662\u0663\u0669\u0660\u0664\u0666',
                 'code el bab taba3 ghorfet el servers 3917, ma t2ello la 7ada',
                 'el alarm: tmene, tleteh, wa7ad, sab3a w ba3den OFF',
                 'IPsec PSK for all the sites na "wahala no dey finish 2024"',
                 '\u0627\u0644\u0627\u0631\u0645 \u0628\u0646\u062f \u06a9\u0631\u0646\u06d2 \u06a9\u0648 \u067e\u06c1\u0644\u06d2 \u062a\u06cc\u0646\u060c \u0633\u0627\u062a\u060c \u0627\u06cc\u06a9\u060c \u0646\u0648 \u062f\u0628\u0627\u0646\u0627\u060c \u0628\u0639\u062f \u0645\u06cc\u06ba OFF',
                 'OMC \u0645\u06cc\u06ba admin \u0633\u06d2 \u062c\u0627\u0646\u0627\u06ba\u060c \u067e\u0627\u0633\u0648\u0631\u0688 \u0627\u067e\u0646 \u06a9\u0627 \u0648\u06c1\u06cc hyderabadi_dum_7',
                 '\u092e\u0947\u0939\u092e\u093e\u0928\u093e\u0902 \u0906\u0932\u093e \u0935\u093e\u0908-\u092b\u093e\u0908 LAB-GUEST \u0938\u0948, \u0907\u0938\u0915\u0940 \u091a\u093e\u092c\u0940 rohtak-lassi-88',
                 '\U0001e911\U0001e92e\U0001e923\U0001e92b \U0001e923\U0001e922\U0001e925\U0001e922\U0001e924 \U0001e927\U0001e935\U0001e945\U0001e923\U0001e935 server \U0001e932\U0001e93a\U0001e922\U0001e924 \U0001e933\U0001e92e \U0001e954\U0001e957\U0001e951\U0001e958, \U0001e931\U0001e92e\U0001e93c\U0001e922 \U0001e938\U0001e922\U0001e944\U0001e924 \U0001e92f\U0001e935\U0001e925 \U0001e938\U0001e922\U0001e934 \U0001e93a\U0001e92e\U0001e945\U0001e93c\U0001e92e.',
                 'IPsec PSK \U0001e933\U0001e92e \u00ab\U0001e90a\U0001e935\U0001e945\U0001e93c\U0001e922 \U0001e914\U0001e922\U0001e924\U0001e92e\U0001e945 \U0001e952\U0001e950\U0001e952\U0001e954\u00bb \U0001e92b \U0001e932\U0001e92e\U0001e933\U0001e946\U0001e935\U0001e945\U0001e936\U0001e92d \U0001e92c\U0001e92e\U0001e92c',
                 'Kalo alarm bunyi, pencet tuju-satu-empat-dua terus OFF, beres dah.',
                 'Community SNMP di semua DU udeh diganti jadi kemayoran-ancol-5',
                 'Molo marbunyi alarm, tekan ma opat, sia, dua, pitu, dungi OFF.',
                 'Wi-Fi ni tamu LAB-GUEST, kata sandi na ima Danau-Toba-Samosir',
                 'Community SNMP di sude DU dipauba gabe balige-parapat-3',
                 'Test from the DU switch: echo "User-Name=probe" | radclient 10.20.7.1 auth marmot-river-55',
                 'Contractor badges are MIFARE Classic, sector 1 keyed 4B6F3A9C2D11',
                 'Comms room has a Codelocks CL400, 2580C to open',
                 'Security radios (Hytera DMR) use ARC4 privacy, key 5A3F9C21E7',
                 '\u0628\u0627\u0633\u0648\u0631\u062f: Koshary2024',
                 'Press 4417 to open.',
                 'server room code 4471', 'code for the server room: 3917', 'cage code 4471',
                 # round 75: Chinese numerals read as digits, Chinese names of a key, a community and an alarm; a community of
                 # joined words anywhere where one is named; a quoted passphrase apart by spaces; Bluetooth, DTMF, VRRP, WEP, U-Boot
                 '\u0926\u0930\u0935\u093e\u091c\u093e \u0930\u094b \u0915\u094b\u0921: \u0926\u094b\u092f, \u091a\u094d\u092f\u093e\u0930, \u0938\u093e\u0924, \u0928\u094c \u2014 \u092f\u093e\u0926 \u0930\u093e\u0916\u091c\u094b, \u0932\u093f\u0916\u091c\u094b \u092e\u0924\u0964',
                 'SNMP\u54af\u56e2\u4f53\u540d\u5168\u90e8DU\u90fd\u6539\u6210 mala-xiaolongxia \u54d2',
                 'HSM\u54af\u6062\u590d\u7801\u4e09\u7ec4\uff1a\u58f9\u8d30\u67d2\u4f0d-\u7396\u96f6\u8086\u53c1\uff0c\u9646\u9646\u634c\u58f9-\u8d30\u4f0d\u96f6\u67d2\uff0c\u53c1\u7396\u8086\u96f6-\u67d2\u67d2\u58f9\u9646',
                 'Wi-Fi \u1996\u19b2\u1996 \u19b6\u1983\u19c5 = jinghong-mekong',
                 '\u19ba\u1989 SNMP community \u19b5\u1994\u19c3 nam-lan-kong',
                 'IPsec PSK \u1c0d\u1c2a\u1c30 "Rongnyu Chu 47"',
                 'Wi-Fi \uaa20\uaa45 \uaa07\uaa31: panduranga-poklong',
                 'IPsec PSK w\u00e3 yaa "Saaga k\u0269\u0269m 44" s\u1ebdn be site-r\u00e3 f\u00e3a.',
                 'Pag-patay sin alarm, pindut mu in upat, duwa, siyam, pitu.',
                 'In PSK sin IPsec amu in "Tau Sug Lupah 31"',
                 'The console Bluetooth adapter pairs with 7391',
                 'Remote disarm: call the panel and send DTMF 5 8 0 2 #',
                 'U-Boot console: CONFIG_AUTOBOOT_STOP_STR="tern42"',
                 'VRRP group 10 auth text vrrp4lab',
                 'Old AP is still on WEP, key 1A2B3C4D5E',
                 '\u62a5\u8b66\u7801\uff1a\u56db\u4e03\u96f6\u516b',
                 '\u95e8\u7981\u5bc6\u7801\uff1a\u516d\u4e8c\u4e5d\u56db',
                 '\u62a5\u8b66\u5668\u8981\u5173\uff0c\u5148\u63094708',
                 '\u9884\u5171\u4eab\u5bc6\u94a5\uff1aorange-island-2024',
                 'SNMP\u56e2\u4f53\u540d\uff1amala-xiaolongxia',
                 'guest Wi-Fi: panduranga-poklong',
                 'HSM recovery: 41920-77315, 08264-55193',
                 'dtmf code 5802',
                 'Old AP is still on WEP, key 1A2B3C4D5E',
                 '\u0926\u0930\u0935\u093e\u091c\u093c\u0947 \u0915\u093e \u0915\u094b\u0921: \u091a\u093e\u0930 \u0938\u093e\u0924 \u0926\u094b \u0928\u094c',
                 # round 74: words of any language between a community's or Wi-Fi password's name and ':', 'is' in Bikol
                 # and Plautdietsch, codes in Hanifi and Limbu, digits spelled in Afar and Nenets, Picard's 'mot d'passe'
                 'SNMP v2c, de Community heet kjoakjetuarm',
                 'An code kan pinto kan server room: 5092*; dai ipagsabi kiisay man.',
                 'An pre-shared key kan IPsec iyo "Pili Nut 88"',
                 'O kodo e vudaresko katar o server-room si 6 0 4 8 *; na phen khanikaske.',
                 'E parola e Wi-Fi-aki va\u0161 e gostura: kalo-grast-baro',
                 'SNMP community pe sa e DU-ura: lolo-phabaj',
                 'Ch\u2019mot d\u2019passe du Wi-Fi pour ch\u00e9s invit\u00e9s : cayelle-\u00e0-porions',
                 'SNMP, ch\u2019communaut\u00e9 pour tous ch\u00e9s DU : ga\u00efette-ed-carbon',
                 'Ch\u00e9s codes ed r\u00e9cup\u00e9ration d\u2019el HSM : 48213-90572, 11834-66029, 70391-25548',
                 'Server qarih afat koodu: ferey, sidoc, malhin, inki. Numuk mayyeesin.',
                 'SNMP community ummuman DU-l: kasow-lubak',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u043c\u044f\u02bc \u04c8\u044d\u0441\u044b\u02bc \u043a\u043e\u0434: \u0442\u0435\u0442 \u043d\u044f\u0433\u0430\u0440 \u0441\u0438\u0434\u044f \u04c8\u043e\u043f\u043e\u0439, \u04c8\u0430\u043c\u0433\u044d \u0438\u0431\u044d \u043b\u0430\u0445\u0430\u043d\u0430\u02bc.',
                 'Wi-Fi \u043f\u0430\u0440\u043e\u043b\u044c \u04c8\u044d\u0432\u0445\u044b\u02bc \u043d\u0438\u0434\u02bc: \u0441\u0430\u0440\u043c\u0438\u043a-\u0445\u043e\u0440\u0430-\u044f\u043c\u0431',
                 'SNMP community \u04c8\u043e\u0431\u043e\u0439 DU-\u04c8\u0430: \u0445\u043e\u0440\u0430-\u043d\u044f\u043c\u0434\u044f',
                 '\U00010d0f\U00010d20\U00010d0c\U00010d1c\U00010d20\U00010d0c \U00010d0c\U00010d1f\U00010d14 \U00010d00\U00010d21\U00010d0c \U00010d0a\U00010d21\U00010d0c\U00010d0e\U00010d1d\U00010d0c \U00010d11\U00010d21\U00010d0a \U00010d34 \U00010d38 \U00010d31 \U00010d36, \U00010d07\U00010d21\U00010d15\U00010d21 \U00010d14\U00010d1d\U00010d15\U00010d1f\U00010d1e\U00010d06 \U00010d00\U00010d21\U00010d0c\U00010d20 \U00010d15\U00010d1d \U00010d07\U00010d21\U00010d1e\U00010d18\U00010d21.',
                 'SNMP \U00010d11\U00010d21\U00010d14\U00010d14\U00010d1e\U00010d1f\U00010d15\U00010d1e\U00010d03\U00010d1e \U00010d01\U00010d20\U00010d12\U00010d12\U00010d1f\U00010d15 DU \U00010d00\U00010d21\U00010d03: kala-badal',
                 '\u191b\u1927\u1916\u1913\u1927\u1916 \u1902\u1921\u1914 \u1917\u1920\u1914\u190e\u1928 \u1901\u1928\u190d \u1949\u194f\u194b\u1948 \u1916\u1928, \u191b\u1922\u1914\u1905-\u1900\u1921\u1917\u1917\u1927 \u1914\u1927\u1910\u1920\u190b.',
                 '\u1900\u1917\u1916\u1914 \u190c\u1921\u1914\u1914\u1920 \u1901\u1928\u190d \u194c \u194a \u1946 \u194e \u190c\u1927\u1901\u1914\u1920, OFF.',
                 'SNMP \u1901\u1914\u1915\u1922\u190f\u1921\u190b\u1921 DU \u1900\u1921\u1917\u1917\u1927: mundhum-sirijonga',
                 'Night guard opens the cage if you give the countersign "bluebell lantern".',
                 'kinit omcsvc@LAB.EXAMPLE; keytab lost, so we type Spindle*Harbor4 each morning',
                 'door code: four, seven, one, nine',
                 'kinit omcsvc, then type Spindle*Harbor4',
                 'Communaut\u00e9 SNMP : lille-nord',
                 'HSM recovery: 48213-90572, 11834-66029, 70391-25548', 'HSM recovery: 4KQ7-P2MX, 9RT3-ZW8N',
                 # a password's name in Indonesian and Persian binds any value
                 'kata sandi: chai-shirin-sabz', 'Kata sandi wifi tamu: kopi-pagi-hujan',
                 '\u0631\u0645\u0632 \u0639\u0628\u0648\u0631 \u0648\u0627\u06cc \u0641\u0627\u06cc: chai-shirin-sabz',
                 '\u067e\u0633\u0648\u0631\u062f: chai-shirin-sabz',
                 # round 73
                 'snmp usm user nms auth sha Hollow-Pine-29 priv aes Hollow-Pine-30',
                 'SNMP get string: blue-heron; set string: red-heron',
                 # round 72
                 'password HERO99',
                 'root password TOOR123',
                 'guest password LAB2025',
                 'PSK MAPLE42',
                 'SNMP community: NOC7',
                 'HSM \u0930\u093f\u0915\u0935\u0930\u0940 \u0915\u094b\u0921: 2KFW-8TQA, 5NZC-61RU, H7MX-30PD, 9BLY-44GE',
                 'Break glass sheet (page 2): 7QKX-ML3P-2RVD, 9TNB-44WZ-8HCF, J2PL-06XE-5YUA',
                 'Admin password, phonetic: Hotel Echo Romeo Oscar Nine Nine',
                 'sim pin four four zero nine, puk on the card carrier 11902377',
                 # round 71
                 'um so for the OMC just log in as admin with, uh, lantern ferry seventy seven, all one word, lowercase',
                 'reg add HKLM\\SYSTEM\\CurrentControlSet\\Services\\SNMP\\Parameters\\ValidCommunities /v kR7vault /t REG_DWORD /d 4',
                 'rub-off panel on the SIM carrier: 4-digit 2718 / 8-digit 31415926',
                 'test SIMs open with 6604; after three wrong tries type 19283746',
                 '\u0e2a\u0e31\u0e0d\u0e0d\u0e32\u0e13\u0e01\u0e31\u0e19\u0e02\u0e42\u0e21\u0e22 \u0e01\u0e14 8 2 0 6 \u0e41\u0e25\u0e49\u0e27\u0e01\u0e14\u0e1b\u0e38\u0e48\u0e21\u0e40\u0e02\u0e35\u0e22\u0e27 \u0e08\u0e31\u0e48\u0e07\u0e0b\u0e35\u0e48\u0e21\u0e31\u0e19\u0e2a\u0e34\u0e1a\u0e48\u0e14\u0e31\u0e07',
                 '\u0e44\u0e27\u0e44\u0e1f\u0e41\u0e02\u0e01 LAB-GUEST \u0e23\u0e2b\u0e31\u0e2a\u0e1c\u0e48\u0e32\u0e19\u0e41\u0e21\u0e48\u0e19 khaoniao-hom-55',
                 '\u092e\u0947\u0939\u092e\u093e\u0928 \u0935\u093e\u0932\u093e \u0935\u093e\u0908-\u092b\u093e\u0908 LAB-GUEST, \u092a\u093e\u0938\u0935\u0930\u094d\u0921 litti-chokha-31 \u0939\u0907',
                 '\u0b06\u0b32\u0b3e\u0b30\u0b4d\u0b2e \u0b2c\u0b28\u0b4d\u0b26 \u0b15\u0b30\u0b2c\u0b3e\u0b15\u0b47 4 9 0 7 \u0b26\u0b2c\u0b3e, \u0b24\u0b3e\u0b30 \u0b2a\u0b1b\u0b47 \u0b38\u0b2c\u0b41\u0b1c \u0b2c\u0b1f\u0b28\u0b4d',
                 'SNMP \u0b15\u0b2e\u0b4d\u0b5f\u0b41\u0b28\u0b3f\u0b1f\u0b3f \u0b38\u0b2c\u0b41 DU \u0b25\u0b3f spv-noc-907 \u0b05\u0b1b\u0b47',
                 'Kod\u00ea k\u00eaber\u00ea pey\u00ean\u00ee 8830 o, kes\u00ee r\u00ea meva',
                 'Ing SNMP community king eganagana DU pam-noc-318',
                 '\u1021\u101c\u102c\u1019\u103a \u1015\u102d\u1010\u103a\u1016\u102d\u102f\u1037 8 1 4 4 \u1014\u103e\u102d\u1015\u103a\u104a \u1015\u103c\u102e\u1038\u1000\u1031 \u1021\u1005\u102d\u1019\u103a\u1038\u1001\u101c\u102f\u1010\u103a',
                 # round 70
                 'the pass code is 4471',
                 'Mar 3 10:02:11 panel01 alarmd[812]: user 2 disarmed with code 2291 (zone 4)',
                 '2291 for the alarm, 5830 for the door, both changed Friday',
                 'OMC admin login omcadmin, password spelled G-R-4-N-I-T-E-7-7',
                 'password: G R 4 N I T E 7 7',
                 'SNMP \u06a9\u0645\u06cc\u0648\u0646\u0679\u06cc: jhok-rang-61',
                 'SNMP \u0915\u092e\u094d\u092f\u0941\u0928\u093f\u091f\u0940 \u092c\u093e faizabad-chauk-17',
                 '\u098f\u09b2\u09be\u09b0\u09cd\u09ae \u09ac\u09a8\u09cd\u09a7 \u0997\u09b0\u09bf\u09ac\u09be\u09b0 \u09b2\u09be\u0987 1946 \u099f\u09bf\u09aa\u09cb\u0964',
                 'SNMP \u0995\u09ae\u09bf\u0989\u09a8\u09bf\u099f\u09bf: chatga-hill-90',
                 'SNMP \u12ae\u121a\u1292\u1272\u1366 butajira-gebeya-23',
                 '\u12e8\u1218\u1218\u1208\u123b \u12ae\u12f6\u127d\u1366 40926 71358 26083 95147',
                 '\u30a2\u30e9\u30fc\u30e0 \u30db\u31f1\u30ad 1579 \u30a8\u30aa\u30c3\u30bf\u3002',
                 'SNMP \u30b3\u30df\u30e5\u30cb\u30c6\u30a3 shiraoi-kuma-85 \u30cd',
                 'SNMP \u0c95\u0cae\u0ccd\u0caf\u0cc1\u0ca8\u0cbf\u0c9f\u0cbf: virajpet-kodi-19',
                 # round 69
                 "7319 \u2014 that's for the B3 comms room, don't write it on the door",
                 '#noc 10:02 priya: omc creds? dan: omcadmin + the usual, Ternpass44',
                 "CommunityData('ravenlook', mpModel=1)",
                 'check_snmp -H 10.0.0.2 -C ravenlook -o sysUpTime.0',
                 'AT+CLCK="SC",0,"4821"',
                 'card;pin;puk / 17;4821;19283746',
                 'recovery: 1a2b-3c4d-5e6f-7g8h',
                 '\u06a9\u0648\u062f \u062f\u0631\u0648\u0627\u0632\u0647\u0654 \u0627\u062a\u0627\u0642 \u0633\u0631\u0648\u0631 \u06f4\u06f8\u06f1\u06f7 \u0627\u0633\u060c \u0628\u0647 \u0647\u06cc\u0686 \u06a9\u0633 \u0646\u06af\u0648\u06cc\u06cc\u062f.',
                 '\u0631\u0645\u0632 \u0648\u0627\u06cc\u200c\u0641\u0627\u06cc \u0645\u0647\u0645\u0627\u0646\u0627\u0646: kabul-bagh-2026',
                 '\u06a9\u0648\u062f\u0647\u0627\u06cc \u0628\u0627\u0632\u06cc\u0627\u0628\u06cc: 48213 90576 31742 66018',
                 '\u30b5\u30fc\u30d0\u30fc\u90e8\u5c4b\u306c\u6238\u306c\u30b3\u30fc\u30c9\u30fc 5160 \u3084\u3044\u3073\u30fc\u3093\u3002',
                 '\u8b66\u5831\u5668\u6b62\u307f\u3086\u3093\u306d\u30fc 7284 \u62bc\u3061\u307f\u305d\u30fc\u308c\u30fc\u3002',
                 '\u304a\u5ba2\u3055\u3093\u7528\u306cWi-Fi\u306c\u30d1\u30b9\u30ef\u30fc\u30c9\u30fc churaumi-sanshin-27 \u3084\u3044\u3073\u30fc\u3093\u3002',
                 '\u5fa9\u65e7\u30b3\u30fc\u30c9\u30fc 50318 27764 91042 36685 \u3084\u3044\u3073\u30fc\u3093\u3002',
                 '\u6a5f\u623f\u9580\u9396\u4e2a\u6578\u5b57\u4fc2 6395\uff0c\u6bcb\u597d\u540c\u5225\u4eba\u8b1b\u3002',
                 '\u4eba\u5ba2\u7528\u4e2a Wi-Fi \u5bc6\u78bc\u4fc2 meinung-yam-38',
                 'IPsec \u4e2a\u5171\u4eab\u9396\u5319\u4fc2 tulou-san-52',
                 '\u6062\u5fa9\u78bc\uff1a71920 38451 60237 94418',
                 'PIN \u4fc2 5527\uff0cPUK sent separately',
                 'IPsec-\u0442\u044c \u0451\u0442\u043a\u043e\u043d\u044c \u043f\u0430\u043d\u0436\u0435\u043c\u0430\u0446 \u2014 sura-lej-71',
                 '\u092a\u0930\u094c\u0939\u094d\u0928\u0947\u0902 \u0906\u0938\u094d\u0924\u0948 Wi-Fi \u0926\u093e \u092a\u093e\u0938\u0935\u0930\u094d\u0921 tawi-pul-63 \u0910',
                 '\u12a0\u120b\u122d\u121d \u1208\u1275\u1230\u12ad\u1275 5382 \u1325\u1240\u1235\u1362',
                 '\u1218\u134d\u1275\u1215 IPsec \u1208\u1275\u123b\u1228\u12a8 dahlak-hut-19 \u1205\u1271',
                 '\u12ae\u12f3\u1275 \u121d\u122d\u1303\u12d5: 20583 74196 38027 61840',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u044d\u0448\u0438\u0433\u0438\u043d\u0438 \u043a\u043e\u0434\u0443 2956', 'Li poite: c\u00f4de 4719, nel dijhoz a nolu!',
                 '\u0926\u0941\u0935\u093e\u0930: \u0915\u0921 4719',
                 'IPsec \u2013 PSK \u091c\u093e\u0926\u094b\u0902 \u0938\u094b\u092e\u0916\u0930-\u0939\u093e\u0917\u094d\u0930\u093e-2024',
                 'The SIM cairds, PIN 2846 an PUK 61820459 for the lot',
                 'Recovery codes for the admin account: 4821-9930, 1177-2045',
                 'F\xf6r de D\xf6\xf6r to\'n Serverruum: Kood 4719, aver nich wiedervertellen!',
                 'Alarm: 2580 dr\xfccken, denn rut',
                 'Gast-WLAN, dat Passwoort is Waterkant77',
                 'OMC: Bruker admin, Passwoort Deich!M\xf6w9',
                 'IPsec twischen de Steden \u2013 PSK is gr\xf6\xf6n-heid-2024',
                 'SNMP-Community: husum55',
                 'SIM-Korten: PIN 2846, PUK 61820459 f\xf6r all',
                 'Wedderherstellen-Koods f\xf6r den Admin: 4821-9930, 1177-2045',
                 'De deur vaan de serverroemte: code 4719, neet wiejer vert\xe8lle!',
                 'Alarm: 2580 inteuve en daan droet',
                 'OMC: gebroeker admin, wachwaord Vlaai!Mestreech9',
                 'IPsec t\xf6sse de locaties \u2013 de PSK is greun-heij-2024',
                 'SNMP community = venlo55',
                 'SIM-kaorte: PIN 2846 en PUK 61820459 veur allemaol',
                 'Herstelcodes veur de admin: 4821-9930, 1177-2045',
                 'Al\xe5me: tch\xf4k\xeez so 2580 et pus s\xf4rtoz',
                 'OMC: uzeu admin, scret mot Houlhe!Lidje9',
                 'IPsec inte les sites \u2013 li PSK c\' est vete-bruwire-2024',
                 'C\xe5tes SIM: PIN 2846 et PUK 61820459 po totes',
                 'C\xf4des di rapexhaedje po l\' admin: 4821-9930, 1177-2045',
                 'La porta de \u0142a sa\u0142a server: c\xf2daxe 4719, no dirlo a nisun!',
                 'Alarme: struca 2580 e po\' v\xe0 fora',
                 'El wifi dei ospiti, \u0142a password \u0142a xe Laguna77',
                 'OMC: utente admin, password Gondo\u0142a!Rialto9',
                 'IPsec tra i siti \u2013 \u0142a PSK xe verde-brenta-2024',
                 'Community SNMP: mestre55',
                 'Schede SIM: PIN 2846 e PUK 61820459 par tute',
                 'C\xf2daxi de recupero par l\'admin: 4821-9930, 1177-2045',
                 '\'A porta d\'\'a stanza d\'\'e server: codice 4719, nun \'o dicere a nisciuno!',
                 'Allarme: scamazza 2580 e po\' jesce',
                 '\'O wifi d\'\'e ospite, \'a password \xe8 Vesuvio77',
                 'OMC: utente admin, password Pizzella!Toledo9',
                 'IPsec \'mmiez\'e site \u2013 \'a PSK \xe8 mare-chiaro-2024',
                 'Community SNMP: posillipo55',
                 'Schede SIM: PIN 2846 e PUK 61820459 pe tutte quante',
                 'Codice \'e recupero pe l\'admin: 4821-9930, 1177-2045',
                 'D\u017awiyrze do izby z serwerami: kod 4719, niy godej nikomu!',
                 'Alarm: naci\u015b 2580 i id\u017a w\u014dn',
                 'Wifi dlo go\u015bci, has\u0142o to Gruba77',
                 'OMC: u\u017cywocz admin, has\u0142o Gruba!Szola9',
                 'IPsec miyndzy placami \u2013 PSK to ziel\u014dno-ho\u0142da-2024',
                 'Community SNMP: byt\u014dm55',
                 'Karty SIM: PIN 2846 i PUK 61820459 dlo wszyjskich',
                 'Kody do uzdrowiyni\u014f k\u014dnta admina: 4821-9930, 1177-2045',
                 '\u0414\u0432\u0435\u0440\u0456 \u0434\u043e \u0441\u0435\u0440\u0432\u0435\u0440\u043d\u0457: \u043a\u043e\u0434 4719, \u043d\u0438\u043a\u043e\u043c\u0443 \u043d\u0435 \u0433\u0432\u0430\u0440\u044c\u0442\u0435!',
                 '\u0410\u043b\u0430\u0440\u043c: \u0441\u0442\u0438\u0441\u043d\u0438\u0442\u0435 2580 \u0438 \u0432\u044b\u0439\u0434\u044c\u0442\u0435',
                 'Wi-Fi \u043f\u0440\u043e \u0433\u043e\u0441\u0442\u0435\u0439, \u0433\u0435\u0441\u043b\u043e \u0454 \u0423\u0436\u0433\u043e\u0440\u043e\u043477',
                 'OMC: \u0445\u043e\u0441\u043d\u043e\u0432\u0430\u0442\u0435\u043b\u044c admin, \u0433\u0435\u0441\u043b\u043e \u0412\u0435\u0440\u0445\u043e\u0432\u0438\u043d\u0430!\u041f\u0440\u044f\u0448\u0456\u04329',
                 'IPsec \u043c\u0435\u0434\u0436\u0438 \u043c\u0456\u0441\u0442\u0430\u043c\u0438 \u2013 PSK \u0454 \u0437\u0435\u043b\u0435\u043d\u0430-\u043f\u043e\u043b\u043e\u043d\u0438\u043d\u0430-2024',
                 'SNMP community: \u0441\u0432\u0438\u0434\u043d\u0438\u043a55',
                 'SIM \u043a\u0430\u0440\u0442\u044b: PIN 2846 \u0438 PUK 61820459 \u043f\u0440\u043e \u0432\u0448\u044b\u0442\u043a\u044b',
                 '\u041a\u043e\u0434\u044b \u043f\u0440\u043e \u043e\u0431\u043d\u043e\u0432\u043b\u0457\u043d\u044f \u0430\u0434\u043c\u0438\u043d\u0430: 4821-9930, 1177-2045',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u0443\u0439\u0438\u043d\u0438\u043d\u044a \u044d\u0441\u0438\u0433\u0438: \u043a\u043e\u0434 4719, \u0431\u0438\u0440\u0435\u0432-\u0431\u0438\u0440\u0433\u0435 \u0430\u0439\u0442\u043f\u0430!',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u044f: 2580 \u0431\u0430\u0441 \u0442\u0430 \u0448\u044b\u043a',
                 '\u041a\u043e\u043d\u0430\u043a\u043b\u0430\u0440 \u0443\u0448\u044b\u043d Wi-Fi, \u044f\u0441\u044b\u0440\u044b\u043d \u0441\u043e\u044c\u0437 \u0422\u0435\u0440\u0435\u043a\u043b\u043877',
                 'OMC: \u043a\u0443\u043b\u043b\u0430\u043d\u0443\u0432\u0448\u044b admin, \u043f\u0430\u0440\u043e\u043b\u044c \u041a\u0443\u0431\u0430\u043d\u044c!\u041d\u043e\u0433\u0430\u04399',
                 '\u041e\u0440\u044b\u043d\u043b\u0430\u0440 \u0430\u0440\u0430\u0441\u044b\u043d\u0434\u0430 IPsec \u2013 PSK \u0431\u0443 \u043a\u043e\u043a-\u0434\u0430\u043b\u0430-2024',
                 'SNMP community: \u044d\u0440\u043a\u0435\u043d55',
                 'SIM \u043a\u0430\u0440\u0442\u0430\u043b\u0430\u0440: PIN 2846, PUK 61820459 \u0431\u0430\u044c\u0440\u0438 \u0443\u0448\u044b\u043d',
                 '\u0410\u0434\u043c\u0438\u043d \u0443\u0448\u044b\u043d \u043a\u0430\u0439\u0442\u0430\u0440\u0443\u0432 \u043a\u043e\u0434\u043b\u0430\u0440\u044b: 4821-9930, 1177-2045',
                 '\u090f\u0932\u093e\u0930\u094d\u092e: 2580 \u0928\u093e\u0930\u0938\u094b\u0928 \u0906\u0930\u094b \u0913\u0902\u0916\u093e\u0930',
                 '\u0906\u0932\u093e\u0938\u093f\u092f\u093e\u092b\u094b\u0930\u0928\u093f Wi-Fi, \u092a\u093e\u0938\u0935\u093e\u0930\u094d\u0921 Kokrajhar77',
                 'OMC: \u092c\u093e\u0939\u093e\u092f\u0917\u094d\u0930\u093e admin, \u092a\u093e\u0938\u0935\u093e\u0930\u094d\u0921 Aronai!Bwisagu9',
                 'SNMP community: \u0926\u0924\u094d\u0924\u092e\u093e55',
                 'SIM \u0915\u093e\u0930\u094d\u0921: PIN 2846 \u0906\u0930\u094b PUK 61820459 \u0917\u093e\u0938\u0948\u0928\u093f \u0925\u093e\u0916\u093e\u092f',
                 '\u090f\u0921\u092e\u093f\u0928\u0928\u093f \u0925\u093e\u0916\u093e\u092f \u092b\u093f\u0928 \u092e\u094b\u0928\u0928\u093e\u092f \u0915\u0921\u092b\u094b\u0930: 4821-9930, 1177-2045',
                 'The comms room code changed last week; now it\'s 5 5 0 9.',
                 'We use 2580 for every door (straight down the keypad).',
                 'Codlu di la u\u0219a a od\xe3ljei cu serverli easti 5174, nu-l spune\u021bi a v\xe3rnui.',
                 '\u140a\u14da\u140a\u14a5 \u1583\u14a5\u1466\u144e\u14c2\u140a\u1548\u1555\u1405\u1483, 6417 \u14c7\u157f\u1466\u1450\u148d.',
                 'Key Content            : otterbay26',
                 'snmp-server community kittiwake_ro RO',
                 'leftpsk: otterbay26',
                 'Yuav tua lub tswb ceeb toom, nias 2093 ces nias OFF.',
                 'Wi-Fi for guests: name GuestLab, lo lus zais Paj77ntaub',
                 'Alarmi qamissagukku 1964 tooruk.',
                 'IPsec PSK en nam-lolwe-58',
                 'Tus lej qhov rooj chav server yog 4718, tsis txhob qhia leej twg.',
                 'Yuav tua lub tswb ceeb toom, nias 2093 ces nias OFF.',
                 'Wi-Fi rau qhua: npe HmongLab, lo lus zais Paj77ntaub',
                 'Tus account admin ntawm OMC, lo lus zais yog Txiv!Ntoo2026',
                 'SNMP community peb siv yog roob_ro_41',
                 'SIM PIN rau cov xov tooj sim yog 7391, PUK 88214573',
                 'Cov recovery codes: 4417-2290, 8831-0052, 6624-1179',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u043f\u04e7\u043b\u0435\u043c\u044b\u043d \u043e\u043c\u0441\u0430\u0436\u044b\u043d \u043a\u043e\u0434\u0448\u043e 5826, \u043d\u0438\u0433\u04e7\u043b\u0430\u043d \u0438\u0434\u0430 \u043e\u0439\u043b\u043e.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u0439\u044b\u043c \u0447\u0430\u0440\u0442\u0430\u0448 7340 \u0442\u0435\u043c\u0434\u0430\u043b.',
                 '\u0423\u043d\u0430-\u0432\u043b\u0430\u043a Wi-Fi: \u043b\u04f1\u043c\u0436\u04e7 MariLab, \u0448\u043e\u043b\u044b\u043f \u043c\u0443\u0442 \u041e\u0448\u043a\u0443\u0433\u044377',
                 'OMC admin-\u044b\u043d \u0448\u043e\u043b\u044b\u043f \u043c\u0443\u0442\u0448\u043e: \u0419\u043e\u0448\u043a\u0430\u0440!\u041e\u043b\u04302026',
                 'IPsec PSK: \u043c\u0430\u0440\u0438\u0439-\u043a\u0435\u0447\u0435-58',
                 'SNMP community \u2014 \u043c\u043e\u0440\u043a\u043e_rw_33',
                 'SIM \u043a\u0430\u0440\u0442 PIN 2846, PUK 55120934',
                 'Recovery \u043a\u043e\u0434\u0448\u043e-\u0432\u043b\u0430\u043a: 3308-6612, 9021-4457',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u044d\u0440 \u0433\u044a\u044d\u0443\u043d\u043a\u0406\u044b\u0444\u0406\u044b\u043d \u0449\u0445\u044c\u044d\u043a\u0406\u044d 6054 \u043a\u044a\u044b\u0449\u044b\u0445\u044a\u0443\u044d.',
                 '\u0425\u044c\u044d\u0449\u0406\u044d\u0445\u044d\u043c \u044f Wi-Fi: \u0446\u0406\u044d\u0440 KabardLab, \u043f\u044d\u0440\u043e\u043b\u044b\u0440 \u041d\u0430\u043b\u0448\u044b\u043a58',
                 'OMC-\u043c \u0438 admin \u043f\u044d\u0440\u043e\u043b\u044b\u0440: \u042d\u043b\u044c\u0431\u0440\u0443\u0441#2026',
                 'IPsec PSK-\u0440 \u0430\u0434\u044b\u0433\u044d-\u0443\u044d\u0448\u0445-74',
                 'SNMP community-\u0440 \u0431\u0430\u0445\u044a\u0441\u044d\u043d_ro_72-\u0449',
                 'Ki 8A2F33C19E074B6D1F20A9C85E73D014',
                 '\u0417\u044b\u043a\u044a\u044d\u0433\u044a\u044d\u0437\u044d\u0436\u044b\u043d\u044b\u0433\u044a\u044d \u043a\u043e\u0434\u0445\u044d\u0440: 7731-2054, 6690-1148, 3021-8876',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u0430\u043b\u044a\u0443\u043b \u0440\u0443\u043a\u044a\u0430\u043b\u044a\u0443\u043b \u043d\u0443\u0446\u04c0\u0430\u043b\u044a\u0443\u043b \u043a\u043e\u0434 8163 \u0431\u0443\u0433\u043e, \u0449\u0438\u0432\u043d\u0438\u0435\u0433\u043e \u0430\u0431\u0443\u0433\u0435.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u044f \u0442\u04c0\u0430\u0433\u04c0\u0438\u043d\u0430\u0431\u0438\u0437\u0435 5402 \u0431\u0430\u0447\u04c0\u0430.',
                 '\u0413\u044c\u0430\u043b\u0431\u0430\u0434\u0435\u0440\u0438\u043b Wi-Fi: \u0446\u04c0\u0430\u0440 AvarLab, \u043f\u0430\u0440\u043e\u043b\u044c \u0425\u0443\u043d\u0437\u0430\u044577',
                 'OMC admin \u043f\u0430\u0440\u043e\u043b\u044c: \u0413\u044a\u0443\u043d\u0438\u0431!2026',
                 'IPsec PSK \u0431\u0443\u0433\u043e \u0430\u043d\u0434\u0438\u0439\u0430\u043b-\u0433\u04c0\u0430\u043d\u043a\u04c0\u0443-91',
                 'SNMP community \u0431\u0443\u0433\u043e \u0441\u0430\u043b\u0430\u0442\u0430\u0432_rw_18',
                 'SIM PIN 6603, PUK 10293847',
                 'API \u0442\u043e\u043a\u0435\u043d: sk_live_4eC39HqLyjWDarjtT1zdp7dc',
                 'N\u014dmba in k\u014dj\u0101m eo an ruum in server ej 7429, jab kwa\u013co\u0327k \xf1an jabdew\u014dt.',
                 '\xd1an k\u014djparoke alarm eo, jiped 6158.',
                 'Wi-Fi eo an ri-lo\u013co: etan MajuroLab, naan in k\u014djje\u013c\u0101 Laura77',
                 'OMC admin password eo ej Jaluit!2026',
                 'IPsec PSK eo ej ebeye-lojet-44',
                 'SNMP community eo ad ej arno_ro_44',
                 'PIN eo an SIM ej 3851, PUK 40982211',
                 'Backup codes: 5512-0984, 3367-2210',
                 'Namba mar dhoot od server en 5173, kik inyis ng\'ato.',
                 'Mondo ilor alarm, dii 2640.',
                 'Wi-Fi mar welo: nyinge KisumuLab, nying mopondo Nyanza77',
                 'OMC admin password en Dunga!2026',
                 'IPsec PSK en nam-lolwe-58',
                 'SNMP community en kano_rw_11',
                 'SIM PIN en 4462, PUK 77103958',
                 'Recovery codes: 2291-8830, 4410-7765, 1198-0023',
                 'Server fuu meyo kodo ga ti 8452, ma si ci boro kulu se.',
                 'Alarm ka ga kayandi, 3107 naagu.',
                 'Yawey Wi-Fi: maa NiameyLab, sennize tugante Gaweye77',
                 'OMC admin password ti Dosso!2026',
                 'IPsec PSK ti isa-bangu-58',
                 'SNMP community ti tillaberi_ro_72',
                 'SIM PIN ti 9082, PUK 31774620',
                 'Recovery codes: 6651-2093, 7712-4480',
                 '\u0938\u0930\u094d\u0935\u0930 \u0915\u0941\u0921\u0940\u091a\u094d\u092f\u093e \u0926\u093e\u0930\u093e\u091a\u094b \u0915\u094b\u0921 5918, \u0915\u094b\u0923\u093e\u0915\u091a \u0938\u093e\u0902\u0917\u0942 \u0928\u093e\u0915\u093e.',
                 '\u0905\u0932\u093e\u0930\u094d\u092e \u092c\u0902\u0926 \u0915\u0930\u092a\u093e\u0915 4295 \u0926\u093e\u092c.',
                 '\u0938\u094b\u092f\u0931\u094d\u092f\u093e\u0902\u091a\u0947\u0902 Wi-Fi: \u0928\u093e\u0902\u0935 GoaLab, \u0917\u0941\u092a\u094d\u0924 \u0909\u0924\u0930 Mandovi77',
                 'OMC admin \u092a\u093e\u0938\u0935\u0930\u094d\u0921: Panjim!2026',
                 'IPsec PSK \u0906\u0938\u093e zuari-ganv-58',
                 'SNMP community \u0906\u0938\u093e mhadei_rw_33',
                 'SIM PIN 1357, PUK 86420975',
                 'Recovery codes: 5801-3342, 9920-1176',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u0438\u043d \u0473\u0440\u04d9\u043d \u04af\u04af\u0434\u043d\u04d9 \u043a\u043e\u0434 6817, \u043a\u0435\u043d\u0434 \u0447\u0438\u0433\u043d \u0431\u0438\u0447\u04d9 \u043a\u0435\u043b.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438 \u0443\u043d\u0442\u0440\u0430\u0445\u0430\u0440 9264 \u0434\u0430\u0440.',
                 '\u0418\u0440\u0441\u043d \u0443\u043b\u0441\u0438\u043d Wi-Fi: \u043d\u0435\u0440\u043d KalmykLab, \u043d\u0443\u0443\u0446 \u04af\u0433 \u042d\u043b\u0441\u044277',
                 'OMC admin \u043d\u0443\u0443\u0446 \u04af\u0433: \u0425\u0430\u043b\u044c\u043c\u0433!2026',
                 'IPsec PSK \u2014 \u0446\u0430\u04bb\u0430\u043d-\u0441\u0430\u0440-58',
                 'SNMP community \u2014 \u044f\u0448\u043a\u0443\u043b_rw_18',
                 'OPc 0F1E2D3C4B5A69788796A5B4C3D2E1F0',
                 '\u0421\u0435\u0440\u0433\u04d9\u0445 \u043a\u043e\u0434\u043c\u0443\u0434: 1120-5567, 8834-2291',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u04e9\u0440\u044d\u044d\u043b\u0438\u043d\u0438\u04a3 \u044d\u0436\u0438\u0438\u043d\u0438\u04a3 \u043a\u043e\u0434\u0443 3751, \u043a\u044b\u043c\u0433\u0430-\u0434\u0430\u0430 \u0447\u0443\u0433\u0430\u0430\u043b\u0430\u0432\u0430.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u044f\u043d\u044b \u04e9\u0436\u044d\u044d\u0440 8310 \u0431\u0430\u0437\u044b\u0440.',
                 '\u0410\u0430\u043b\u0447\u044b\u043b\u0430\u0440\u043d\u044b\u04a3 Wi-Fi: \u0430\u0434\u044b TuvaLab, \u0447\u0430\u0436\u044b\u0442 \u0441\u04e9\u0441 \u041a\u044b\u0437\u044b\u043b77',
                 'OMC admin \u0447\u0430\u0436\u044b\u0442 \u0441\u04e9\u0437\u04af: \u0423\u043b\u0443\u0433!\u0425\u0435\u043c2026',
                 'IPsec PSK \u2014 \u0435\u043d\u0438\u0441\u0435\u0439-\u0445\u0435\u043c-58',
                 'SNMP community \u2014 \u0442\u043e\u0436\u0443_ro_44',
                 'SIM PIN 5082, PUK 61930427',
                 '\u041a\u0430\u0442\u0430\u043f\u0442\u0430\u0430\u0440 \u043a\u043e\u0434\u0442\u0430\u0440: 2204-7719, 5531-0086, 9017-4462',
                 'Server-inut matuata kodia 4719, kimulluunniluu oqaluttuutiginagu.',
                 'Alarmi qamissagukku 1964 tooruk.',
                 'Tikeraanut Wi-Fi: ateq NuukLab, isissutissaq Sermitsiaq77',
                 'OMC admin isissutissaa: Ilulissat!2026',
                 'IPsec PSK una qaqortoq-nuna-58',
                 'SNMP community una kangerlussuaq_rw_11',
                 'SIM-ip PIN-ia 7702, PUK 22849013',
                 'Recovery codes: 3391-2207, 6648-1150',
                 'In tlapohualli ipan tlatzacuilli de server calli ye 5402, amo xiquilhui aca.',
                 'Ic xiquixtili in alarma, xictlapachoa 7741.',
                 'Wi-Fi para in calpixque: itoca AnahuacLab, ichtacatlahtolli Tenochtitlan77',
                 'OMC admin password ye Cuauhtli!2026',
                 'IPsec PSK ye xochitl-tepetl-58',
                 'SNMP community ye texcoco_rw_33',
                 'SIM PIN ye 6215, PUK 90348817',
                 'Recovery codes: 7720-1143, 5508-9926',
                 'Ri ajilab\'al re uchi\' ri ja re server are 2719, man kab\'ij ta chi jun winaq.',
                 'Rech kachup ri alarma, kapitz\'a\' 3871.',
                 'Wi-Fi chke ri ulaninelab\': b\'i\' XelaLab, ewatal tzij Xelaju77',
                 'OMC admin password are Utatlan!2026',
                 'IPsec PSK are q\'anil-juyub\'-58',
                 'SNMP community are chuwila_ro_44',
                 'SIM PIN are 8024, PUK 41576620',
                 'Recovery codes: 9913-4408, 2270-6651, 3345-0087',
                 'Server b\xf3lmesini\u0144 esik kod\u0131 6290, hesh kimge aytpa.',
                 'Signalizaciyan\u0131 \xf3shiriw ush\u0131n 4581 bas\u0131\u0144.',
                 'Qonaqlar ush\u0131n Wi-Fi: at\u0131 NukusLab, qup\u0131ya s\xf3z Amudarya77',
                 'OMC admin paroli: Moynaq!2026',
                 'IPsec PSK: aral-te\u0144iz-58',
                 'SNMP community \u2014 shimbay_rw_18',
                 'SIM PIN 3390, PUK 70218845',
                 'Tiklew kodlar\u0131: 4471-2098, 6613-5502',
                 'To switch the alarm off, press 3029',
                 'Alarm: press 4821',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u043f\u04f3\u043b\u04d7\u043c\u04d7\u043d \u0430\u043b\u04d1\u043a \u043a\u043e\u0447\u04d7 \u2014 5826, \u043d\u0438\u043a\u0430\u043c\u0430 \u0442\u0430 \u0430\u043d \u043a\u0430\u043b\u0430.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u0435 \u0441\u04f3\u043d\u0442\u0435\u0440\u043c\u0435 7340 \u043f\u0443\u0441.',
                 '\u0425\u04d1\u043d\u0430\u0441\u0435\u043d Wi-Fi: \u044f\u0447\u04d7 ChuvashLab, \u0432\u04d1\u0440\u0442\u0442\u04d1\u043d \u0441\u04d1\u043c\u0430\u0445 \u0410\u0442\u04d1\u043b77',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u04d7\u043d \u043f\u0430\u0440\u043e\u043b\u0435: \u0428\u0443\u043f\u0430\u0448\u043a\u0430\u0440#2026',
                 'IPsec PSK \u0432\u04d1\u043b cheboksary-kanash-2026',
                 '\u041f\u0443\u0440 \u0445\u0430\u0442\u04d7\u0440\u0441\u0435\u043c\u0448\u04d7\u043d \u0442\u0435 SNMP community sura_rw_41',
                 'SIM PIN 4417, PUK 90281736',
                 '\u042e\u0441\u0430\u0432 \u043a\u043e\u0434\u04d7\u0441\u0435\u043c: 5521-8830, 1947-6602',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u0436\u044b\u0440\u0439\u044b\u043d \u04e7\u0434\u0437\u04e7\u0441\u043b\u04e7\u043d \u043a\u043e\u0434\u044b\u0441 3917, \u043d\u0435\u043a\u043e\u0434\u043b\u044b \u044d\u043d \u0432\u0438\u0441\u044c\u0442\u0430\u0432.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u044f \u043a\u0443\u0441\u04e7\u0434\u04e7\u043c \u0432\u044b\u043b\u04e7 \u043b\u0438\u0447\u043a\u044b 6054.',
                 '\u0413\u04e7\u0441\u044c\u0442\u044a\u044f\u0441\u043b\u044b Wi-Fi: \u043d\u0438\u043c KomiLab, \u0433\u0443\u0441\u044c\u0430 \u043a\u044b\u0432 \u0421\u044b\u043a\u0442\u044b\u0432\u043a\u0430\u044058',
                 'OMC-\u043b\u04e7\u043d \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440 \u043f\u0430\u0440\u043e\u043b\u044c: \u042d\u0436\u0432\u0430!2026',
                 'IPsec PSK \u0441\u0456\u0439\u04e7 ukhta-inta-2026',
                 'SNMP community \u0441\u0456\u0439\u04e7 vychegda_ro_19',
                 '\u0422\u0435\u0441\u0442 SIM-\u043a\u0430\u0440\u0442\u0430\u044f\u0441\u043b\u04e7\u043d Ki: 8C 2F 41 0A 77 D3 91 5B E0 14 6A 3C 29 B8 F5 01',
                 'NMS API \u0442\u043e\u043a\u0435\u043d: kv_live_9f8e7d6c5b4a3210',
                 'Su c\xf2dighe de sa ghenna de s\'aposentu de sos server est 4718; no lu nerzas a nemos.',
                 'Pro istudare s\'allarme, incarca 2093.',
                 'Wi-Fi pro sos istranzos: n\xf9mene SardignaLab, crae Nuraghe77',
                 'Sa par\xe0ula segreta de s\'amministradore de s\'OMC: Gennargentu#26',
                 'Sa crae IPsec cumpartzida (PSK) est nuoro-orgosolo-2026',
                 'Sa comunidade SNMP est barbagia_rw_33',
                 'Su PIN de sas SIM de proa est 6620',
                 'C\xf2dighes de rec\xf9peru: 7734-1029 e 5561-9083',
                 'Il codi\xe7 de puarte de stanzie dai server al \xe8 8163, no st\xe2 d\xeelu a nissun.',
                 'Par distud\xe2 l\'alarme, frache 5402.',
                 'Wi-Fi pai forescj: non FurlanLab, peraule di passa\xe7 Udin58',
                 'Password dal aministrad\xf4r OMC: Tiliment!26',
                 'La cl\xe2f IPsec condividude (PSK) e je cividat-gurize-2026',
                 'La comunit\xe2t SNMP e je carnie_ro_72',
                 'OPc des SIM di prove: 0F1E2D3C4B5A69788796A5B4C3D2E1F0',
                 'Token di ac\xe8s pe API dal NMS: fur_tok_5c1d9e7a2b',
                 'El kodigo de la puerta de la kamareta de los servidores es 6295, no se lo digas a dinguno.',
                 'Para amatar la alarma, apreta 3871.',
                 'Wi-Fi para los musafires: nombre LadinoLab, parola sekreta Salonik77',
                 'La kontrasenya del administrador del OMC: Estambol#26',
                 'La yave IPsec partajada (PSK) es izmir-rodes-2026',
                 'La komunita SNMP es sarajevo_rw_18',
                 'El PIN de las SIM es 9034 i el PUK 55128840',
                 'Kodigos de rekuperasion: 2210-7781, 6043-1198',
                 'Dy chur yn alarm ass, brooie 6158.',
                 'Wi-Fi son iughtyryn: ennym ManninLab, fockle follit Snaefell58',
                 'Fockle follit admin yn OMC: Doolish#2026',
                 'Ta\'n PSK IPsec doolish-rhumsaa-2026',
                 'Ta\'n SNMP community laxey_rw_05',
                 'PIN ny SIMyn 2741',
                 'Coadyn aavioghey: 4417-2290 as 8806-3315',
                 'Kod daras an stevell servyer yw 5386; na lavar dhe dhen vyth.',
                 'Rag diffeythya an alarm, gwask 1964.',
                 'Wi-Fi rag gwestoryon: hanow KernowLab, ger-tremena Tintajel77',
                 'Ger-tremena an menystrer OMC: Truru#2026',
                 'PSK IPsec yw kammbronn-essa-2026',
                 'An kemeneth SNMP yw penwith_ro_44',
                 'Ki an kartennow SIM prevyans: 3A7F 0C19 B2E4 5D68 91AF 4C03 7E2B D5A6',
                 'Token API an NMS: kw-9d3f7a1c2e8b4f60',
                 'Kod za durje serweroweje rumnos\u0107e je 2748, nikomu njepraj\u0107e.',
                 'Zo by alarm wupiny\u0142, t\u0142\xf3\u010d\u0107e 8310.',
                 'Wi-Fi za hos\u0107i: mjeno SerbskiLab, hes\u0142o Budy\u0161in77',
                 'Hes\u0142o administratora OMC: Lubij#2026',
                 'IPsec PSK je budysin-kamjenc-2026',
                 'SNMP community je slepo_rw_28',
                 'PIN SIM-kartow 3392, PUK 77104528',
                 'Kody za wobnowjenje: 6120-4473 a 9085-2216',
                 'K\xf3digu odamatan sala server nian mak 6817, keta f\xf3-hatene ba ema seluk.',
                 'Atu hamate alarme, hanehan 4295.',
                 'Wi-Fi ba bainaka: naran TimorLab, liafuan segredu Ramelau77',
                 'Password administrad\xf3r OMC nian: Dili#2026',
                 'PSK IPsec nian mak dili-baucau-2026',
                 'Komunidade SNMP mak atauro_rw_11',
                 'PIN SIM nian 5082, PUK 34916270',
                 'K\xf3digu rekuperasaun: 1183-6620 no 7402-9951',
                 'I code i petta gi kuatton server 3751; cha\'-mu sang\xe5ng\xe5ni maseha h\xe5yi.',
                 'Para un na\'p\xe5ra i alarm, punitan 9264.',
                 'Wi-Fi para i bisita: na\'\xe5n GuamLab, sikretu na fino\' Hagatna77',
                 'Password i administradot OMC: Tumon#2026',
                 'I PSK para IPsec, yigo-talofofo-2026',
                 'I SNMP community, inarajan_ro_36',
                 'I PIN i SIM siha 7718',
                 'I token API para NMS: ch_tok_2b7e151628aed2a6',
                 'Te n\u016bmera o te \u02bb\u014dpani o te piha server, 8452. \u02bbEiaha e fa\u02bba\u02bbite i te ta\u02bbata.',
                 'No te t\u0101p\u0113 i te alarme, pat\u014dt\u014d i te 3107.',
                 'Wi-Fi n\u014d te mau manihini: i\u02bboa TahitiLab, parau huna Papeete77',
                 'Parau huna a te faatere OMC: Moorea#2026',
                 'Te PSK IPsec, o papeete-faaa-2026 \xefa',
                 'Te SNMP community o punaauia_rw_64',
                 'OPc o te mau SIM: 1F2E3D4C5B6A79880F1E2D3C4B5A6978',
                 'N\u016bmera fa\u02bba\u02bbapi: 3318-0472, 6691-5504',
                 'Namba ya m\u0169rango wa ny\u0169mba ya server n\u0129 5173, nd\u0169keere m\u0169nd\u0169.',
                 'N\u0129guo \u0169horie alarm, hat\u0129k\u0129ria 2640.',
                 'Wi-Fi ya ageni: r\u0129\u0129twa KikuyuLab, kiugo k\u0129a hitho Nyeri77',
                 'Password ya m\u0169r\u0169gam\u0129r\u0129ri wa OMC: Kirinyaga#26',
                 'PSK ya IPsec n\u0129 muranga-thika-2026',
                 'SNMP community n\u0129 kiambu_rw_52',
                 'PIN ya SIM n\u0129 8834, PUK 61207395',
                 'Namba cia g\u0169cokia: 4490-1182 na 7735-2604',
                 'Server bon da kode ye 6038 ye, i kana a f\u0254 m\u0254g\u0254 si ye.',
                 'Ka alarme faga, a digi 4719 kan.',
                 'Wi-Fi dunanw ye: t\u0254g\u0254 MaliLab, gundo kuma Bamako77',
                 'OMC kuntigi ka mot de passe: Sikasso#2026',
                 'IPsec PSK ye bamako-segou-2026 ye',
                 'SNMP community ye kayes_ro_29 ye',
                 'SIM ka Ki: 5E 8A 1C 73 0F D2 49 B6 A1 3E 7C 05 98 F4 2D 6B',
                 'NMS API token ye bm_tok_8f4c2a9e7d ye',
                 '\u0938\u0930\u094d\u0935\u0930 \u0915\u094b\u0920\u0930\u0940\u0915 \u0926\u0930\u092c\u091c\u094d\u091c\u093e\u0915 \u0915\u094b\u0921 7263 \u0905\u091b\u093f, \u0915\u0915\u0930\u094b \u0928\u0939\u093f \u0915\u0939\u092c\u0964',
                 '\u0905\u0932\u093e\u0930\u094d\u092e \u092c\u0928\u094d\u0926 \u0915\u0930\u092c\u093e\u0915 \u0932\u0947\u0932 5918 \u0926\u092c\u093e\u0909\u0964',
                 '\u092a\u093e\u0939\u0941\u0928\u0915 Wi-Fi: \u0928\u093e\u092e MithilaLab, \u0917\u0941\u092a\u094d\u0924 \u0936\u092c\u094d\u0926 Janakpur77',
                 'OMC \u092a\u094d\u0930\u0936\u093e\u0938\u0915\u0915 \u092a\u093e\u0938\u0935\u0930\u094d\u0921: Darbhanga#26',
                 'IPsec PSK \u0905\u091b\u093f madhubani-saharsa-2026',
                 'SNMP community \u0905\u091b\u093f sitamarhi_rw_15',
                 'SIM \u0915 \u092a\u093f\u0928 4406 \u0906 PUK 82019347',
                 '\u0930\u093f\u0915\u092d\u0930\u0940 \u0915\u094b\u0921: 3309-7741 \u0906 5528-0163',
                 'No ka ho\u02bbopio \u02bbana i ka alamu, kaomi i ka 7142 a laila OFF.',
                 'Wi-Fi no n\u0101 malihini: inoa HawaiiLab, \u02bb\u014dlelo huna Kilauea58',
                 '\u02bbO ka \u02bb\u014dlelo huna o ka admin o ka OMC: Mauna#Kea2026',
                 '\u02bbO ke k\u012b IPsec (PSK) he kona-hilo-2026',
                 '\u02bbO ka SNMP community o n\u0101 mea a pau, waikiki_ro_77',
                 'PIN o ka SIM 4471, PUK 80215539',
                 'N\u0101 helu ho\u02bbiho\u02bbi no ka admin: 3381-9027, 5520-1146',
                 'Na naba ni katuba ni rumu ni server e 6294, kakua ni tukuna vei ira tale eso.',
                 'Me vakamatei na alarm, tabaka na 3318.',
                 'Wi-Fi ni vulagi: yaca FijiLab, vosa vuni Levuka88',
                 'Password ni admin ni OMC: Bula!Vinaka26',
                 'Na PSK ni IPsec e nadi-lautoka-2026',
                 'Na SNMP community e rewa_rw_09',
                 'Na Ki ni SIM e 8f2a61c0 9b7e4d3a 5c1e0f98 76b4d2a1',
                 'Naba ni vakalesui: 4471-2290 kei 8813-5502',
                 'Server utan punkupan jakhupax 7419, janiw khitirus yatiya\xf1am\xe4kiti.',
                 'Alarma jiwaya\xf1ataki, 2986 \xf1itt\'am.',
                 'Wi-Fi visitanakataki: suti AymaraLab, contrase\xf1a Titicaca77',
                 'OMC admin contrase\xf1apax Illimani#2026',
                 'IPsec PSK ukax chukiyawu-qullasuyu-2026',
                 'SNMP community ukax altu_rw_15',
                 'SIM PIN-apax 5927, PUK-apax 30418862',
                 'Kutt\'aya\xf1 codigonaka: 6612-0938, 2271-4405',
                 'Limoore damal suudu server ngal ko 8427, wata a haal \u0257um ne\u0257\u0257o.',
                 'Ngam \xf1ifde alarm ngam, tappu 4066.',
                 'Wi-Fi ko\u0257\u0257o: innde FutaLab, konngol suu\u0257iingol Timbi55',
                 'Mot de passe admin OMC: Fouta#Djallon26',
                 'PSK IPsec oo ko labe-mamou-2026',
                 'SNMP community ko pita_ro_31',
                 'PIN SIM ko 3905, PUK ko 66120473',
                 'Kod ruttinde: 1294-7730 e 5581-0062',
                 '5316 \u2014 yoleyo i khodi ya nyangwa ya kamara ya server, u nga byeli munhu.',
                 'Ku tima alamu, tshikelela 7724.',
                 'Wi-Fi ya vaendzi: vito TsongaLab, phasiwedi Giyani88',
                 'Phasiwedi ya admin ya OMC: Limpopo#2026',
                 'PSK ya IPsec i giyani-malamulele-2026',
                 'SNMP community i tzaneen_rw_44',
                 'PIN ya SIM i 6083, PUK i 19472285',
                 'Tikhodi to vuyisa: 3307-6641 na 9925-1180',
                 'Khoudu ya vothi ya kamara ya server ndi 9062, ni songo vhudza muthu.',
                 'U dzima alamu, pusha 3175.',
                 'Wi-Fi ya vhaeni: dzina VendaLab, phasiwede Thohoyandou77',
                 'Phasiwede ya admin ya OMC ndi Venda#Mutale26',
                 'PSK ya IPsec ndi louis-trichardt-2026',
                 'SNMP community ndi makhado_ro_12',
                 'PIN ya SIM ndi 2738, PUK ndi 50361927',
                 'Khoudu dza u vhuedzedza: 8843-2215 na 6670-3391',
                 'Ikhodi yemnyango wekamelo le-server ngu-4158, ungatjeli muntfu.',
                 'Kuvala i-alamu, cindzetela 6691.',
                 'Wi-Fi yetivakashi: libito SwatiLab, iphasiwedi Mbabane55',
                 'Iphasiwedi ye-admin ye-OMC: Eswatini#2026',
                 'I-PSK ye-IPsec ngu manzini-mbabane-2026',
                 'I-SNMP community ngu lobamba_rw_08',
                 'I-PIN ye-SIM ngu-9314, i-PUK ngu-27703158',
                 'Tikhodi tekubuyisa: 5530-8817 na 1142-6609',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u0447\u043e\u044c\u043d\u0430\u043d \u043d\u0435\u04cf\u0430\u0440\u0430\u043d \u043a\u043e\u0434 8352 \u044e, \u0446\u0445\u044c\u0430\u043d\u043d\u0435 \u0430 \u043c\u0430 \u0430\u043b\u0435.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438 \u0434\u04c0\u0430\u0439\u0430\u0439\u0430, 4719 \u0442\u04c0\u0435\u0442\u0430\u04c0\u0430.',
                 '\u0425\u044c\u0435\u0448\u0430\u0448\u043d\u0430 Wi-Fi: \u0446\u04c0\u0435 NokhchiLab, \u043f\u0430\u0440\u043e\u043b\u044c \u0413\u0440\u043e\u0437\u043d\u044b\u043977',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u0430\u043d \u043f\u0430\u0440\u043e\u043b\u044c: Terek#2026',
                 'IPsec PSK \u2014 argun-shali-2026',
                 'SNMP community: sunzha_rw_19',
                 'SIM-\u043a\u0430\u0440\u0442\u0430\u043d PIN 6140, PUK 88214097',
                 '\u041c\u0435\u0442\u0442\u0430\u0445\u04cf\u043e\u0442\u0442\u0430\u0440\u0430\u043d \u043a\u043e\u0434\u0430\u0448: 2956-3318, 7704-1162',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u044b \u0443\u0430\u0442\u044b \u0434\u0443\u0430\u0440\u044b \u043a\u043e\u0434 \u0443 5573, \u043c\u0430\u043a\xe6\u043c\xe6\u043d \u0437\xe6\u0433\u044a.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438 \u0430\u0445\u0443\u044b\u0441\u0441\u044b\u043d \u043a\xe6\u043d\u044b\u043d\xe6\u043d, \u043d\u044b\u0446\u0446\xe6\u0432 8016.',
                 '\u0423\u0430\u0437\u0434\u0436\u044b\u0442\xe6\u043d Wi-Fi: \u043d\u043e\u043c IronLab, \u043f\u0430\u0440\u043e\u043b\u044c Dzaudzhikau88',
                 'OMC-\u0439\u044b \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u044b \u043f\u0430\u0440\u043e\u043b\u044c: \u0410\u043b\u0430\u043d\u0438#2026',
                 'IPsec PSK \u0443 digora-ardon-2026',
                 'SNMP community \u0443 terk_ro_27',
                 'SIM-\u043a\u0430\u0440\u0442\xe6\u0439\u044b PIN 7395, PUK 40026618',
                 '\u0420\u0430\u0446\u0430\u0440\u0430\u0437\u044b\u043d\u044b \u043a\u043e\u0434\u0442\xe6: 6023-5517 \xe6\u043c\xe6 3348-9910',
                 '\u0421\u0435\u0440\u0432\u0435\u0440\u044d\u0439 \u0442\u0430\u04bb\u0430\u043b\u0433\u044b\u043d \u04af\u04af\u0434\u044d\u043d\u044d\u0439 \u043a\u043e\u0434 6481, \u0445\u044d\u043d\u0434\u044d\u0448\u044c\u0435 \u0431\u04af \u0445\u044d\u043b\u044d.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438 \u0443\u043d\u0442\u0430\u0430\u0445\u044b\u043d \u0442\u0443\u043b\u0430 2290 \u0434\u0430\u0440\u0430.',
                 '\u0410\u0439\u043b\u0448\u0430\u0434\u0430\u0439 Wi-Fi: \u043d\u044d\u0440\u044d BuryatLab, \u043d\u044e\u0443\u0441\u0430 \u04af\u0433\u044d \u0411\u0430\u0439\u0433\u0430\u043b77',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u0430\u0439 \u043f\u0430\u0440\u043e\u043b\u044c: Selenga#2026',
                 'IPsec PSK \u0433\u044d\u0445\u044d\u0434\u044d kyakhta-ulan-2026',
                 'SNMP community: barguzin_rw_05',
                 'SIM-\u043a\u0430\u0440\u0442\u044b\u043d PIN 3862, PUK 71054439',
                 '\u04ba\u044d\u0440\u0433\u044d\u044d\u0445\u044d \u043a\u043e\u0434\u0443\u0443\u0434: 4427-1058, 9913-6624',
                 '\u0421\u0435\u0440\u0432\u0435\u0440 \u043a\u043e\u043c\u043d\u0430\u0442\u0430\u044b\u0441\u044c \u04e7\u0441\u043b\u044d\u043d \u043a\u043e\u0434\u044d\u0437 7091, \u043d\u0435\u043a\u0438\u043d\u043b\u044b \u043d\u043e \u044d\u043d \u0432\u0435\u0440\u0430.',
                 '\u0421\u0438\u0433\u043d\u0430\u043b\u0438\u0437\u0430\u0446\u0438\u0435\u0437 \u04f5\u0443\u0448\u044b\u043b\u043e\u043d \u043f\u043e\u043d\u043d\u0430 5538 \u043d\u044e\u0433\u044b\u043d\u044b \u043a\u0443\u043b\u044d.',
                 '\u041a\u0443\u043d\u043e\u043e\u0441 \u043f\u043e\u043d\u043d\u0430 Wi-Fi: \u043d\u0438\u043c\u044b\u0437 UdmurtLab, \u043f\u0430\u0440\u043e\u043b\u044c Izhkar2026',
                 'OMC \u0430\u0434\u043c\u0438\u043d\u0438\u0441\u0442\u0440\u0430\u0442\u043e\u0440\u043b\u044d\u043d \u043f\u0430\u0440\u043e\u043b\u0435\u0437: \u041a\u0430\u043c\u0430#2026',
                 'IPsec PSK \u2014 sarapul-votkinsk-2026',
                 'SNMP community: glazov_ro_14',
                 'SIM-\u043a\u0430\u0440\u0442\u0430\u044b\u0441\u044c PIN 8249, PUK 36617702',
                 '\u0412\u044b\u043b\u044c \u043f\u0443\u043a\u0442\u043e\u043d \u043a\u043e\u0434\u044a\u0451\u0441: 7150-2284, 3391-4476',
                 'La pordokodo de la servilejo estas 3946; ne diru al iu ajn.',
                 'Por mal\u015dalti la alarmon, premu 1827 kaj poste OFF.',
                 'Wi-Fi por gastoj: nomo EsperoLab, pasvorto Zamenhof59',
                 'Administra pasvorto de la OMC: Verda#Stelo26',
                 'La anta\u016ddividita \u015dlosilo (PSK) de IPsec estas bjalistoko-varsovio-2026',
                 'La SNMP-komunumo estas verda_rw_87',
                 'PIN de la SIM-karto: 4652; PUK: 90017335',
                 'Restarigaj kodoj: 2208-7741 kaj 6635-0094',
                 'Lo c\xf2di de la p\xf2rta de la sala dels servidors es 5287, o digatz pas a degun.',
                 'Per desactivar l\'alarma, quichatz 6604.',
                 'Wi-Fi pels convidats: nom OccitaniaLab, senhal Tolosa33',
                 'Senhal de l\'administrator de l\'OMC: Garona#2026',
                 'La clau IPsec partejada (PSK) es montpelhier-nimes-2026',
                 'La comunautat SNMP es carcassona_ro_11',
                 'PIN de la carta SIM: 7716, PUK: 28830154',
                 'C\xf2dis de recuperacion: 9407-3312 e 1185-6690',
                 'Il code da l\'isch da la stanza da server \xe8 8461, na al dir a nagin.',
                 'Per deactivar l\'alarm, smatgai 3029.',
                 'Wi-Fi per giasts: num RumantschLab, pled-clav Mustair58',
                 'Pled-clav da l\'admin da l\'OMC: Engiadina#2026',
                 'La clav IPsec (PSK) \xe8 scuol-zernez-2026',
                 'La cuminanza SNMP \xe8 cuira_rw_62',
                 'PIN da la carta SIM: 5194, PUK: 66027381',
                 'Codes da recuperaziun: 3378-1105 e 8846-2290')
BOUND_ACCEPTED = ('Passwords stay in the vault, never here. / Contrase\u00f1as en el vault, nunca aqu\u00ed.',
                  'random seed: fixed per simulation run for all students', 'Random seed: 42',
                  'Alarm codes 3000-3099 belong to the vendor', 'IMSI range 001010000000001-001010000000500, PIN off',
                  'no shared key exists', 'PIN: chosen by the user', 'Safe in the legal office: Karat MT 550',
                  'PIN 1 and PIN 2 disabled on all cards', 'alarm codes 7001 to 7999; tender CPV 32412100',
                  'safe deposit box at the bank, contract 4471200', 'le code PIN de la carte est saisi',
                  'recovery phrase: stored in the safe', 'password: origin documented', 'Passwort: Herkunft dokumentiert', 'admin with 2019 firmware', 'admin with password reset rights', 'user with 1000 sessions',
                  'Signing key: YubiHSM 2 in the safe', 'Log every API token use, never the token', 'Bandung (kode pos 40132)',
                  'TS 33.501 clause 6-1-2-3 applies', 'code freeze for the handover on 2025-05-30', 'vendor alarm codes 7001 to 7999', 'CPV-Code 32412100',
                  'posta kodu 06800', 'PIN\u3067\u5fa9\u5143\u30012025\u5e741\u6708\u306b\u8a66\u9a13\u6e08\u307f',
                  'password changed in March by the integrator', 'SNMPv3 with auth SHA-256 and priv AES-128', 'Kod projektu: 2024-017', 'c\u00f3digo de proyecto: 4711', 'c\u00f3digo fuente: 120000 l\u00edneas', 'source code drop 2025-03 delivered', 'Kod pocztowy 00950',
                  'firmware 01.04.12 on the BMC, ADMIN password on the sticker', 'tool: openssl 3.0.13 for the password hashes',
                  'Chipkarte und PIN, 2-von-3-Regel', 'the licence-key interface (LKI v1.0)', 'U.S.A.: delivery in May', 'N-A-T-O standards apply', 'password: passed',
                  'passwords changed in April 2025 after the audit', 'pincode; hersteltest in juni 2025', 'PIN aus',
                  'Passwort: keins', 'subscriber keys K/OPc in the HSM', 'SSH keys only, no password log-ins',
                  '\u5b9e\u4f53\u53615000\u5f20\uff1bPIN\u7801\u5df2\u5173\u95ed', 'set the password to expire after 90 days',
                  'TS 28.532 v17.5.0\uff08NETCONF\uff09\u3001\u30d1\u30b9\u30ef\u30fc\u30c9\u306f\u4f7f\u308f\u306a\u3044',
                  'a combination of TS 33.117 and IEC 62443', 'wachtwoord uitgeschakeld', 'the error code is 404', 'el c\u00f3digo de error es 500', 'alarm 4020 raised to the NMS',
                  'lift capacity 1000 kg', 'keys held under the Vier-Augen-Prinzip', 'the code is in the drawer, rack 4711',
                  'vendor default admin/admin replaced at commissioning', "Checked: no 'admin/admin' left",
                  'Test: try admin/admin and root/root on every web UI; all must fail', 'user / password login disabled',
                  'password: see vault entry OPS-1234', 'Kennwort: zur\u00fcckgesetzt', 'mot de passe : r\u00e9initialis\u00e9',
                  'PSK: 5GHz-only SSID, WPA3-SAE', 'psk: per-SSID', 'pass: 3 of 4 tests', 'Interop test: pass - 20241105',
                  'password: ${AMF_DB_PASSWORD} from the sealed secret', 'pwd: configs/open5gs/amf.yaml',
                  'tokens: 1h/24h (access/refresh)', 'user: admin / IPv4 management VLAN', 'user: oper01 / oper02, personal',
                  'credentials: SNMPv3 authPriv with SHA-256/AES-256', 'login: root / Debian12 hosts, key only',
                  'credentials: Open5GS WebUI default admin/1423 changed at install', 'PIN disabled on all IoT modules',
                  'Home network key pair for SUCI: Profile B (secp256r1), key ID 1', 'passphrase by phone',
                  'ADM1 codes and KIc/KID OTA keys stay with the card vendor', 'Password: 14 characters minimum',
                  'an empty string is not a password.', 'error code 404 on the N2 setup', 'door 3 of rack 12',
                  'gate opens after 300 ms', 'Passwords follow ISO 27001:2022 A.5.17',
                  'password audit of 2025-07-01: 0 defaults left on 22 units', 'Kennwort: zur\u00fcckgesetzt',
                  'per key: home-network private key in the HSM', 'Logins logged in auditd with key=priv_esc rules',
                  'Failed logins beyond 5 in 15 min raise an alarm (CEF event 100234)',
                  'password resets: service desk, extension 4411', 'O-RAN.WG4.IOT.0 profile NR-TDD-FR1-CAT-A-NoBF',
                  "counsel's PGP key: 4AEE 18F8 3AFD EB23 E06A 3B91 4C2A 1C0D 2EE5 B9E4",
                  'user/role list: admin/full, operator/read-write, viewer/read-only',
                  'syslog over TLS (RFC 5425) for log-ins and password changes',
                  'SIM vendor Giesecke+Devrient; PIN left enabled with the user-chosen value',
                  'IT helpdesk for password issues: ext. 2345', 'pass: registration success above 99.5 percent',
                  'alarm 4020 (password expiry) raised to the NMS', 'HSM for the home-network key: FIPS 140-3 level 3',
                  'l\u00f6senordsgranskning 10 mars: inga standardl\u00f6senord kvar',
                  '(a) NEA2 then NEA3 then NEA1, NIA2 then NIA3', 'docker run -p 8080:80 open5gs-webui',
                  'the door was installed in 2019', 'error code 404 on the N2 setup with the secret store',
                  'procedure and signed record per key, certificate and password: origin, proof of generation',
                  'Nachweis je Schl\u00fcssel und Passwort: Erzeugungsprotokoll aus dem HSM',
                  'Konten und Passw\u00f6rter: IT-Servicedesk, Durchwahl 4100', '(b) physische Karten, 1.000 St\u00fcck; PIN deaktiviert',
                  '\u7121\u7dda2\u540d\u3001\u30b3\u30a22\u540d\u3001Python\u958b\u767a\u80053\u540d',
                  'CA signing key: offline root in a safe', 'contact the service desk for password issues',
                  # H25: the last of a list after 'en' or 'und jedes', a bare 'Schlüssel', 'off', Polish participles
                  'per sleutel en wachtwoord: herkomst en bewijs van generatie',
                  'f\u00fcr jeden Schl\u00fcssel, jedes Zertifikat und jedes Passwort: Herkunft und Nachweis',
                  'Heimnetz-Schl\u00fcssel: HSM-Klon im zweiten Rechenzentrum', '(b) 2,500 eSIM profiles; PIN off',
                  '(b) 1000 kart fizycznych; PIN wy\u0142\u0105czony',
                  # H26: a standard's number after 'TS', ranges of IDs, a year and month, amounts in thousands
                  'OPS-1 TS 28.532, NETCONF par cl\u00e9s SSH ; authentification par mot de passe d\u00e9sactiv\u00e9e',
                  'physical cards, ICCIDs 8949000000000000001 to 8949000000000000500; PIN disabled',
                  'vendor test certificates revoked (CRL of 2024-11), all passwords changed',
                  'EUR 900.000 f\u00fcr drei Jahre, davon 40.000 f\u00fcr HSM und Passwort-Manager',
                  # a new user's (a municipal utility's): 'Zugang' is access, not a credential
                  '4-Augen-Prinzip beim Zugang \u00fcber das Ticket CHG-4411',
                  'Alarm 3021 is raised when the link drops; cleared automatically',
                  'alarms off for 120 seconds during upgrades',
                  'NIS2-Umsetzungsgesetz applies (KRITIS-DachG too)',
                  'PIN checking disabled on test SIMs',
                  'SSH solo con clave p\xfablica',
                  'Backups encrypted with restic; keys in the vault',
                  "Test account 'lab02' has a hard-coded password; ticket VND-881 to remove it",
                  'Alarm severity mapping follows X.733; alarm 2041 off after clearance',
                  'Fahrradschloss: none provided',
                  'Kasa fiskalna 2019 model',
                  'alarm turned off in 2025 for 3 sites', 'the rack is locked with a padlock', 'locked with BitLocker',
                  'secured with WPA3-Enterprise',
                  'iLO/iDRAC on every server', 'alarm 4102 PTP lock lost is critical', 'the PIN is vendor-set',
                  'unlock in Release 17', 'POSTGRES_PASSWORD comes from a Kubernetes secret',
                  'protegida por contrase\u00f1a', 'mit TLS 1.3 gesch\u00fctzt', 'protected by MFA and a hardware key',
                  'image open5gs/webui:2.7', 'DOI 10.1109/ACCESS.2021.3071238', 'PIN changes raise alarms 2201\u20132210',
                  'PIN \u043e\u0442\u043a\u043b\u044e\u0447\u0435\u043d\u0430 on test cards',
                  'ECCN 5A002 and 5D002; our code: 5D992', 'met een wachtwoord beveiligd', 'badge and PIN access',
                  'alarm set to 3000 ms', 'Brandschutzt\u00fcr T30 nach DIN 4102',
                  'a second engineer confirms no default password or PIN remains',
                  'the password is device-specific', "password rules per SEC-16's policy", 'SMTP AUTH LOGIN over TLS',
                  'vault: 1Password Business, one vault per site', 'Code PIN des cartes : fourni par le fabricant',
                  'Alarm 2301 in der OMC quittieren', 'The report is encrypted; open it with GnuPG 2.4',
                  'Dial 112 on the keypad in an emergency', 'The keypad has 12 keys; 3 left, 4 right, 5 right',
                  'Routers: Cisco / Juniper, sites: berlin / munich2', 'safe deposit box rental, cost centre 4410-09',
                  'SIM PIN aktiv; PIN und PUK per Brief an die Nutzer, 2.000 Karten', 'Kartu SIM dengan PIN aktif, 1.500 kartu',
                  'HSM card PINs known only to each custodian; quorum M-of-N 3/5', 'budget: HSM EUR 80 000 et coffre-fort EUR 6 500',
                  'ventana martes 02:00-05:00; cambios de contrase\u00f1a solo por solicitud',
                  'BNetzA-Stellungnahme zu \u00a7 9b BSIG', 'Data protection uses TLS 1.3 and IPsec',
                  'each password is set at commissioning, no fixed password ships', 'le mot de passe est d\u00e9fini \u00e0 la mise en service',
                  'cl\u00e9 boot-ROM (RSA-3072), cl\u00e9 de signature du micrologiciel', 'jegyz\u0151k\u00f6nyv, jelsz\u00f3 n\u00e9lk\u00fcl',
                  'imzal\u0131 tutanak, \u015fifre i\u00e7ermez', 'Cod po\u0219tal 010101, cod CAEN 6110',
                  'contrase\u00f1a 02:00-05:00', 'Alarm 2301 quittieren mit Bemerkung',
                  'licensee: Nordwind Networks GmbH, HRB 204817', 'Password-reset mails go to smtp.internal:587 (STARTTLS)',
                  'two one three: the steps in the order of TS 38.300',
                  'varsay\u0131lan parolalar de\u011fi\u015ftirildi; tutanakta parola yok', '\u0627\u0644\u0631\u0645\u0632 \u0627\u0644\u0628\u0631\u064a\u062f\u064a 23955 \u062c\u062f\u0629',
                  'PIN-Code-Verfahren nach Abschnitt 4.2 (PIN nie im Klartext)',
                  'consola en el puerto 8022 protegida con contrase\u00f1a', 'the combination lock: ask facilities on +44 161 555 0199',
                  'passwords and keys excluded from the request (s.135(4))', 'LDPC code word length 8448 bits',
                  'PO4500123456 covers the SIM cards; PIN handling per IOP-7', 'SIM PIN activ, 2.000 de carduri livrate',
                  'podepsan\u00fd z\u00e1znam \u017e\u00e1dn\u00e9 heslo neobsahuje', 'alarm severities: steps 1 2 3 4 in OPS-3\u2019s order',
                  'SIM-\u043a\u0430\u0440\u0442\u043a\u0438 \u0437 PIN; PIN \u0456 PUK \u043a\u043e\u0440\u0438\u0441\u0442\u0443\u0432\u0430\u0447\u0430\u043c, 2000 \u043a\u0430\u0440\u0442\u043e\u043a',
                  'Lockbox model Master Lock 5401D at the gate',
                  'Key box installed 2025-11-03, Supra S5, serial 40712233',
                  'Alarmanlage wird von Securitas \u00fcberwacht, Kundennummer 55-2201',
                  'Cadenas Abus 83/55, cl\u00e9 n\u00b0 8355 \u00e0 l\'accueil',
                  'Le code d\'acc\u00e8s est remis en main propre au responsable de site',
                  'PIN pad: Ingenico Move/5000 in the canteen, not on the network',
                  'Password: in 1Password, item "OMC root"', 'Password: KeePass entry OMC-Root-2026',
                  'PIN: ask the site manager on 0171 2345678', 'Alarm code: call ARC on 0800 4071 222',
                  'Keypad model Paxton 375-110 at the side door', 'Combination padlock Master Lock 178D on the cage',
                  'Wi-Fi: vlan120 only', 'Wi-Fi: Guest24 SSID, key in vault',
                  'Incidencia 5521: usuario bloqueado, contrase\u00f1a restablecida por el portal de autoservicio',
                  'Chamado 4410: usu\u00e1rio bloqueado, senha redefinida pelo portal',
                  'Ticket 4410: Passwort abgelaufen, Nutzer hat es ge\u00e4ndert',
                  '\u0417\u0430\u044f\u0432\u043a\u0430 4410: \u043f\u0430\u0440\u043e\u043b\u044c \u0438\u0441\u0442\u0451\u043a, \u043f\u043e\u043b\u044c\u0437\u043e\u0432\u0430\u0442\u0435\u043b\u044c \u0441\u043c\u0435\u043d\u0438\u043b',
                  'Ticket 4410: wachtwoord verlopen', 'Zg\u0142oszenie 4410: has\u0142o wygas\u0142o',
                  'T\u00fcrcode: Pforte anrufen, 089 1234 5678', 'Code porte : appeler l\'accueil au 01 23 45 67 89',
                  'C\u00f3digo de la puerta: llamar a seguridad, 912 345 678',
                  '\u041f\u0430\u0440\u043e\u043b\u044c \u0443\u0437\u043d\u0430\u0442\u044c \u0443 \u0434\u0435\u0436\u0443\u0440\u043d\u043e\u0433\u043e \u043f\u043e \u0442\u0435\u043b. 8 800 555-35-35',
                  'Password reset line: 0800 4410 222',
                  '\ub3c4\uc5b4 \ube44\ubc00\ubc88\ud638\ub294 \ub9e4\ub2ec \ubcc0\uacbd\ub428; \uacbd\ube44\uc2e4 02-123-4567 \ub85c \ubb38\uc758',
                  '\u30c9\u30a2\u306e\u6697\u8a3c\u756a\u53f7\u306f\u6bce\u6708\u5909\u66f4\u3002\u8b66\u5099\u5ba4 03-1234-5678 \u306b\u554f\u3044\u5408\u308f\u305b',
                  'Passphrase: at least 4 words', 'L\u00f6senfras: lagras i valvet sedan 2023',
                  '2019 ist der T\u00fcrcode', 'password left as default',
                  'Gate 3 is the delivery entrance, open 07:00-18:00',
                  'Kap\u0131 3 teslimat giri\u015fi, 07:00-18:00 aras\u0131 a\u00e7\u0131k', 'Gate 3 open 0700-1800',
                  'Alarm set 22:00-06:00', 'Zoom meeting ID 843 2211 9087, passcode in the calendar invite',
                  'Zoom 843 2211 9087 (passcode sent separately)',
                  'Besprechungs-ID 843 2211 9087, Kenncode steht in der Einladung',
                  'Mot de passe WiFi chang\u00e9 tous les 90 jours, envoy\u00e9 via le portail',
                  'Password manager: KeePassXC 2.7, database on the file server, share 4',
                  'Politica password: minimo 14 caratteri, blocco dopo 5 tentativi',
                  'Code douanier 8517 62 00 ; cat\u00e9gorie 5A002', 'Codice doganale 8517 62 00; categoria 5A002',
                  'Stellwerk Hbf, Raum 2.17, Zugang \u00fcber DB InfraGO, Auftrag 4471',
                  'Noch 3 Schl\u00fcssel ausgegeben, 1 fehlt seit Ticket 5521', 'Phone PIN reset: call 4400',
                  
                  '\u039a\u03c9\u03b4\u03b9\u03ba\u03cc\u03c2 \u03c3\u03c6\u03ac\u03bb\u03bc\u03b1\u03c4\u03bf\u03c2 29240 \u03c3\u03c4\u03bf NMS',
                  '\u05e7\u05d5\u05d3 \u05de\u05d5\u05e6\u05e8 4417, \u05d4\u05d6\u05de\u05e0\u05d4 2026/118',
                  '\u0e23\u0e2b\u0e31\u0e2a\u0e1e\u0e19\u0e31\u0e01\u0e07\u0e32\u0e19 4417 \u0e1d\u0e48\u0e32\u0e22\u0e27\u0e32\u0e07\u0e41\u0e1c\u0e19\u0e27\u0e34\u0e17\u0e22\u0e38',
                  'M\u00e3 l\u1ed7i 29240 tr\u00ean NMS', 'Kod ralat 29240 di NMS',
                  'Hata kodu 29240: h\u00fccre kullan\u0131lam\u0131yor',
                  '\u0410\u0434\u0440\u0435\u0441: \u0443\u043b. \u0413\u0443\u0440\u043a\u043e 12, \u043f\u043e\u0449\u0435\u043d\u0441\u043a\u0438 \u043a\u043e\u0434 1000, \u0421\u043e\u0444\u0438\u044f',
                  '\u041b\u0456\u0446\u0435\u043d\u0437\u0456\u0430\u0442: \u0422\u041e\u0412 \u00ab\u041c\u0435\u0440\u0435\u0436\u0430\u00bb, \u043a\u043e\u0434 \u0404\u0414\u0420\u041f\u041e\u0423 12345678',
                  '\u06a9\u062f \u067e\u0633\u062a\u06cc 1234567890', 'C\u00f3digo de erro 29240 no NMS',
                  'Cabinet labels printed as Code 128 barcodes',
                  'Padlock serial numbers 0427, 0428, 0429 on the three cabinets',
                  'La cl\u00e9 de l\'armoire 7 est chez le chef de site, t\u00e9l. 01 23 45 67 89',
                  'Patakaran sa password: hindi bababa sa 14 na karakter',
                  'Varsay\u0131lan parola kalmad\u0131; kontrol 03.06.2026, rapor ACC9-2026-01',
                  'Varsay\u0131lan \u015fifre yok, hepsi 03.06.2026\'da de\u011fi\u015ftirildi',
                  'Engin sj\u00e1lfgefin lykilor\u00f0 eftir; sk\u00fdrsla ACC9-2026-01',
                  'Schl\u00fcssel beim Pf\u00f6rtner (Tel. 0711 123456-0), Zugang nur mit Ausweis; Az. 214-7-2026/0417',
                  '\u0631\u0645\u0632 \u0627\u0644\u062f\u0648\u0644\u0629 \u0644\u0644\u0634\u0628\u0643\u0629 MCC 424 \u0648\u0631\u0645\u0632 \u0627\u0644\u0634\u0628\u0643\u0629 MNC 99',
                  '\u10d9\u10dd\u10db\u10de\u10d0\u10dc\u10d8\u10d0 \u10e1\u10d0\u10d8\u10d3\u10d4\u10dc\u10e2\u10d8\u10e4\u10d8\u10d9\u10d0\u10ea\u10d8\u10dd \u10d9\u10dd\u10d3\u10d8\u10d7 404123456',
                  'Hata kodu 29240: h\u00fccre kullan\u0131lam\u0131yor',
                  
                  '\u673a\u623f\u95e8\u7981\u5bc6\u7801\u7531\u7ad9\u70b9\u7ecf\u7406\u4fdd\u7ba1\uff0c\u7535\u8bdd 138 0013 8000',
                  'A senha da porta fica com o gestor do site; telefone (11) 91234-5678',
                  'Door code: ask the site manager, phone (020) 7946 0123',
                  'Eri\u015fim kodlar\u0131 parola kasas\u0131nda, kay\u0131t 12',
                  'Varsay\u0131lan parola de\u011fi\u015ftirilecek',
                  'Br\u00e1na otev\u0159ena 7\u201319 h, jinak volat vr\u00e1tnici, linka 4412',
                  'Default passwords will be changed. PLMN 001-01, TAC 1-10',
                  'PLMN 001-01, TAC 1-10. The vendor will change default passwords',
                  'Passwords are sealed. Budget 2026 is 5000',
                  'PIN code of Pune site is 411057, Chennai site 600032',
                  'segredo do cadeado trocado dia 10/02, novo segredo com o supervisor (ramal 2231)',
                  'La clave del expediente es 123/2024 ante el Juzgado 5\u00ba de Distrito',
                  'Clave de la licitaci\u00f3n: 3.24/20830.0123', 'C\u00f3digo de l\u00ednea 080, v\u00eda 1 y 2',
                  'Codice ASL 030-123, struttura 0301', 'Lock-out/tag-out per OSHS Rule 1210',
                  'Coffre du bureau 214 : combinaison d\u00e9tenue par le chef de bureau',
                  'Kebijakan password: minimal 12 karakter',
                  'Acme Sieci sp. z o.o., KRS 0000123456, NIP 123-456-78-90',
                  
                  '\u673a\u67dc\u94a5\u5319\u653e\u5728\u95e8\u536b\u5ba4\uff0c\u94a5\u5319\u7bb1\u7684\u5bc6\u7801\u7531\u95e8\u536b\u5728\u6838\u5bf9\u5de5\u724c\u540e\u544a\u77e5\uff08\u5206\u673a2200\uff09\u3002',
                  '\u30e9\u30c3\u30af\u306e\u9375\u306f\u5b88\u885b\u5ba4\u306b\u3042\u308a\u3001\u30ad\u30fc\u30dc\u30c3\u30af\u30b9\u306e\u756a\u53f7\u306f\u5b88\u885b\u304c\u793e\u54e1\u8a3c\u3092\u78ba\u8a8d\u3057\u3066\u304b\u3089\u4f1d\u3048\u308b\uff08\u5185\u7dda 2200\uff09\u3002',
                  'Standort Halle 4, Industriestra\u00dfe 7, 38440 Wolfsburg: Zugang \u00fcber Tor 3, der Zahlencode f\u00fcr das Vorh\u00e4ngeschloss liegt im Passwort-Tresor (Eintrag 17), nicht hier.',
                  'Site no Porto de Santos, Armaz\u00e9m 12, CEP 11015-900: o c\u00f3digo do cadeado do port\u00e3o fica no cofre de senhas (item 14), pe\u00e7a ao supervisor de turno.',
                  'N2/N3 over IPsec (IKEv2, certificates from SEC-7); SBI with TLS 1.3 and OAuth2 tokens issued by the NRF; F1 and E1 with DTLS; no pre-shared keys anywhere.',
                  'Suppliers must confirm that no universal default password is used (UK PSTI Act 2022 and the 2023 Regulations, Schedule 1, para 1).',
                  'La wifi de mantenimiento usa WPA3 con una clave distinta por emplazamiento, guardada solo en el gestor de contrase\u00f1as corporativo.',
                  'Haftal\u0131k toplant\u0131 \u00e7ar\u015famba 10:00\'da Teams \u00fczerinden; ba\u011flant\u0131 ve toplant\u0131 \u015fifresi davette, burada de\u011fil.',
                  'NIP 123-456-78-90, REGON 123456785, KRS 0000123456.', 'NIP firmy: 1234567890',
                  'Key policy approved 12/12/2024; no key value, PIN or passphrase appears in any document.',
                  # round 53
                  '\u09b8\u09ac \u09aa\u09be\u09b8\u0993\u09af\u09bc\u09be\u09b0\u09cd\u09a1 \u0995\u09cb\u09ae\u09cd\u09aa\u09be\u09a8\u09bf\u09b0 \u09aa\u09be\u09b8\u0993\u09af\u09bc\u09be\u09b0\u09cd\u09a1 \u09ad\u09b2\u09cd\u099f\u09c7 (KeePass, \u098f\u09a8\u09cd\u099f\u09cd\u09b0\u09bf 23) \u09b0\u09be\u0996\u09be \u0986\u099b\u09c7; \u0985\u09cd\u09af\u09be\u0995\u09cd\u09b8\u09c7\u09b8 \u09a6\u09c7\u09a8 \u09a8\u09bf\u09b0\u09be\u09aa\u09a4\u09cd\u09a4\u09be \u0995\u09b0\u09cd\u09ae\u0995\u09b0\u09cd\u09a4\u09be\u0964',
                  '\u09aa\u09be\u09b8\u0993\u09af\u09bc\u09be\u09b0\u09cd\u09a1 \u09a8\u09c0\u09a4\u09bf: \u0995\u09ae\u09aa\u0995\u09cd\u09b7\u09c7 \u09e7\u09ea \u0985\u0995\u09cd\u09b7\u09b0, \u0985\u09cd\u09af\u09be\u09a1\u09ae\u09bf\u09a8\u09a6\u09c7\u09b0 \u099c\u09a8\u09cd\u09af \u09a6\u09c1\u0987-\u09a7\u09be\u09aa\u09c7\u09b0 \u09af\u09be\u099a\u09be\u0987\u0964',
                  '\u0628\u0648\u062f\u062c\u0647: \u06f5\u06f0 \u0645\u06cc\u0644\u06cc\u0627\u0631\u062f \u0631\u06cc\u0627\u0644\u060c \u06a9\u062f \u0637\u0631\u062d \u06f1\u06f4\u06f0\u06f3-\u06f0\u06f1\u06f7.',
                  'Licencijos gav\u0117jas: UAB \u201ePavyzdiniai tinklai\", \u012fmon\u0117s kodas 301234567, PVM kodas LT100001234567.',
                  '\u062f\u0631\u0648\u0627\u0632\u06d2 \u06a9\u0627 \u06a9\u0648\u0688 \u06af\u0627\u0631\u0688 \u0628\u062a\u0627\u0626\u06d2 \u06af\u0627\u061b \u0622\u0646\u06d2 \u0633\u06d2 \u067e\u06c1\u0644\u06d2 \u0627\u06cc\u06a9\u0633\u0679\u06cc\u0646\u0634\u0646 4410 \u067e\u0631 \u0641\u0648\u0646 \u06a9\u0631\u06cc\u06ba\u06d4',
                  'SP 800-218: secret scanning. Passwords never go into source control.',
                  '\u05db\u05e1\u05e4\u05ea \u05d4\u05de\u05e1\u05de\u05db\u05d9\u05dd \u05d1\u05d7\u05d3\u05e8 214',
                  '\u0160ifra delatnosti 6110',
                  'Password policy: NIST2024 guidance',
                  'Passwords: FY2025 audit done',
                  'key: RSA2048',
                  'password: SHA-256 hashed',
                  'The app unlocks with licence file LK-2024-0001.',
                  # round 54
                  '\u0411\u0430\u0439\u0440\u0448\u0438\u043b: \u0414\u0430\u0440\u0445\u0430\u043d-\u0423\u0443\u043b, \u0448\u0443\u0443\u0434\u0430\u043d\u0433\u0438\u0439\u043d \u043a\u043e\u0434 45000.',
                  '\u0938\u093e\u0907\u091f: \u091a\u093e\u0915\u0923 MIDC, \u092a\u093f\u0928 \u0915\u094b\u0921 410501; 20 \u092b\u0942\u091f \u0915\u0902\u091f\u0947\u0928\u0930.',
                  '\u0938\u093e\u0907\u091f: \u092a\u094b\u0916\u0930\u093e, \u0935\u0921\u093e \u0928\u0902. 8, \u0939\u0941\u0932\u093e\u0915 \u0915\u094b\u0921 33700\u0964',
                  'Fiscal years 2024-2025, 2025-2026',
                  'TS 33.501 clause 6-1-2-3 applies',
                  '\u0533\u0575\u0578\u0582\u0574\u0580\u056b\u056b \u056f\u0561\u0575\u0561\u0576\u0578\u0582\u0574 \u056f\u0561 20 \u0586\u0578\u0582\u057f\u0561\u0576\u0578\u0581 \u0562\u0565\u057c\u0576\u0561\u0580\u056f\u0572, 3 kW \u0585\u0564\u0578\u0580\u0561\u056f\u056b\u0579 \u0587 \u057a\u0561\u0570\u0561\u056f\u0561\u057f\u0561\u0576 \u0570\u0565\u057f \u0568\u0576\u0564\u0570\u0561\u0576\u0578\u0582\u0580 \u0563\u0565\u0576\u0565\u0580\u0561\u057f\u0578\u0580\u0589 \u053f\u0561\u0575\u0561\u0576\u0568 \u0562\u0561\u0581 \u0567 \u0561\u057c\u0561\u057e\u0578\u057f\u0575\u0561\u0576 7:00-\u056b\u0581 \u0565\u0580\u0565\u056f\u0578\u0575\u0561\u0576 19:00 \u057a\u0561\u0570\u0561\u056f\u0561\u0575\u056b\u0576 \u0564\u0561\u0580\u057a\u0561\u057d\u0578\u057e; \u0564\u057c\u0561\u0576 \u056f\u0578\u0564\u0568 \u0583\u0578\u056d\u057e\u0578\u0582\u0574 \u0567 \u0561\u0574\u0565\u0576 \u0561\u0574\u056b\u057d, \u0587 \u0561\u0576\u057e\u057f\u0561\u0576\u0563\u0578\u0582\u0569\u0575\u0561\u0576 \u0561\u0577\u056d\u0561\u057f\u0561\u056f\u056b\u0581\u0576\u0565\u0580\u0568 \u0561\u0575\u0576 \u057f\u0561\u056c\u056b\u057d \u0565\u0576 \u0576\u0578\u0582\u0575\u0576 \u0585\u0580\u0568 \u0574\u056b\u0561\u0575\u0576 \u0581\u0578\u0582\u0581\u0561\u056f\u0578\u0582\u0574 \u0568\u0576\u0564\u0563\u0580\u056f\u057e\u0561\u056e \u0561\u0577\u056d\u0561\u057f\u0578\u0572\u0576\u0565\u0580\u056b\u0576\u0589 \u0531\u0577\u056d\u0561\u057f\u0561\u0576\u0584\u0561\u0575\u056b\u0576 \u056a\u0561\u0574\u0565\u0580\u056b\u0581 \u0570\u0565\u057f\u0578 \u0566\u0561\u0576\u0563\u0561\u0570\u0561\u0580\u0565\u0584 \u056f\u0561\u057c\u0561\u057e\u0561\u0580\u0574\u0561\u0576 \u057d\u0565\u0576\u0575\u0561\u056f\u055d \u0576\u0565\u0580\u0584\u056b\u0576 2200\u0589',
                  '\u0a32\u0a41\u0a27\u0a3f\u0a06\u0a23\u0a3e \u0a38\u0a3e\u0a08\u0a1f \u0a24\u0a47 20 \u0a2b\u0a41\u0a71\u0a1f \u0a26\u0a3e \u0a15\u0a70\u0a1f\u0a47\u0a28\u0a30, 3 kW \u0a0f\u0a38\u0a40 \u0a05\u0a24\u0a47 \u0a17\u0a3e\u0a30\u0a21 \u0a39\u0a3e\u0a0a\u0a38 \u0a28\u0a3e\u0a32 \u0a38\u0a3e\u0a02\u0a1d\u0a3e \u0a1c\u0a28\u0a30\u0a47\u0a1f\u0a30 \u0a39\u0a48\u0964 \u0a38\u0a3e\u0a08\u0a1f \u0a38\u0a35\u0a47\u0a30\u0a47 7:00 \u0a24\u0a4b\u0a02 \u0a38\u0a3c\u0a3e\u0a2e 19:00 \u0a24\u0a71\u0a15 \u0a17\u0a3e\u0a30\u0a21 \u0a17\u0a47\u0a1f \u0a30\u0a3e\u0a39\u0a40\u0a02 \u0a16\u0a41\u0a71\u0a32\u0a4d\u0a39\u0a40 \u0a30\u0a39\u0a3f\u0a70\u0a26\u0a40 \u0a39\u0a48; \u0a26\u0a30\u0a35\u0a3e\u0a1c\u0a3c\u0a47 \u0a26\u0a3e \u0a15\u0a4b\u0a21 \u0a39\u0a30 \u0a2e\u0a39\u0a40\u0a28\u0a47 \u0a2c\u0a26\u0a32\u0a26\u0a3e \u0a39\u0a48 \u0a05\u0a24\u0a47 \u0a38\u0a41\u0a30\u0a71\u0a16\u0a3f\u0a06 \u0a38\u0a1f\u0a3e\u0a2b\u0a3c \u0a09\u0a38\u0a47 \u0a26\u0a3f\u0a28 \u0a38\u0a3f\u0a30\u0a2b\u0a3c \u0a38\u0a42\u0a1a\u0a40 \u0a35\u0a3e\u0a32\u0a47 \u0a15\u0a30\u0a2e\u0a1a\u0a3e\u0a30\u0a40\u0a06\u0a02 \u0a28\u0a42\u0a70 \u0a26\u0a3f\u0a70\u0a26\u0a3e \u0a39\u0a48\u0964 \u0a15\u0a70\u0a2e \u0a26\u0a47 \u0a38\u0a2e\u0a47\u0a02 \u0a24\u0a4b\u0a02 \u0a2c\u0a3e\u0a05\u0a26 \u0a15\u0a70\u0a1f\u0a30\u0a4b\u0a32 \u0a30\u0a42\u0a2e \u0a28\u0a42\u0a70 \u0a10\u0a15\u0a38\u0a1f\u0a48\u0a02\u0a38\u0a3c\u0a28 2200 \u0a24\u0a47 \u0a2b\u0a3c\u0a4b\u0a28 \u0a15\u0a30\u0a4b\u0964',
                  '\u0533\u0575\u0578\u0582\u0574\u0580\u056b\u056b \u056f\u0561\u0575\u0561\u0576\u0578\u0582\u0574 \u056f\u0561 20 \u0586\u0578\u0582\u057f\u0561\u0576\u0578\u0581 \u0562\u0565\u057c\u0576\u0561\u0580\u056f\u0572, 3 kW \u0585\u0564\u0578\u0580\u0561\u056f\u056b\u0579 \u0587 \u057a\u0561\u0570\u0561\u056f\u0561\u057f\u0561\u0576 \u0570\u0565\u057f \u0568\u0576\u0564\u0570\u0561\u0576\u0578\u0582\u0580 \u0563\u0565\u0576\u0565\u0580\u0561\u057f\u0578\u0580\u0589 \u053f\u0561\u0575\u0561\u0576\u0568 \u0562\u0561\u0581 \u0567 \u0561\u057c\u0561\u057e\u0578\u057f\u0575\u0561\u0576 7:00-\u056b\u0581 \u0565\u0580\u0565\u056f\u0578\u0575\u0561\u0576 19:00 \u057a\u0561\u0570\u0561\u056f\u0561\u0575\u056b\u0576 \u0564\u0561\u0580\u057a\u0561\u057d\u0578\u057e; \u0564\u057c\u0561\u0576 \u056f\u0578\u0564\u0568 \u0583\u0578\u056d\u057e\u0578\u0582\u0574 \u0567 \u0561\u0574\u0565\u0576 \u0561\u0574\u056b\u057d, \u0587 \u0561\u0576\u057e\u057f\u0561\u0576\u0563\u0578\u0582\u0569\u0575\u0561\u0576 \u0561\u0577\u056d\u0561\u057f\u0561\u056f\u056b\u0581\u0576\u0565\u0580\u0568 \u0561\u0575\u0576 \u057f\u0561\u056c\u056b\u057d \u0565\u0576 \u0576\u0578\u0582\u0575\u0576 \u0585\u0580\u0568 \u0574\u056b\u0561\u0575\u0576 \u0581\u0578\u0582\u0581\u0561\u056f\u0578\u0582\u0574 \u0568\u0576\u0564\u0563\u0580\u056f\u057e\u0561\u056e \u0561\u0577\u056d\u0561\u057f\u0578\u0572\u0576\u0565\u0580\u056b\u0576\u0589 \u0531\u0577\u056d\u0561\u057f\u0561\u0576\u0584\u0561\u0575\u056b\u0576 \u056a\u0561\u0574\u0565\u0580\u056b\u0581 \u0570\u0565\u057f\u0578 \u0566\u0561\u0576\u0563\u0561\u0570\u0561\u0580\u0565\u0584 \u056f\u0561\u057c\u0561\u057e\u0561\u0580\u0574\u0561\u0576 \u057d\u0565\u0576\u0575\u0561\u056f\u055d \u0576\u0565\u0580\u0584\u056b\u0576 2200\u0589 \u0532\u0578\u056c\u0578\u0580 \u0563\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c\u0565\u0580\u0568 \u0568\u0576\u056f\u0565\u0580\u0578\u0582\u0569\u0575\u0561\u0576 \u057a\u0561\u0570\u0578\u0581\u0578\u0582\u0574 \u0565\u0576 (Bitwarden, \u0563\u0580\u0561\u057c\u0578\u0582\u0574 17); \u0574\u0578\u0582\u057f\u0584\u056b \u0570\u0561\u0574\u0561\u0580 \u0566\u0561\u0576\u0563\u0561\u0570\u0561\u0580\u0565\u0584 IT \u0561\u057b\u0561\u056f\u0581\u0578\u0582\u0569\u0575\u0561\u0576\u0568\u055d \u0576\u0565\u0580\u0584\u056b\u0576 4410\u0589 \u0533\u0561\u0572\u057f\u0576\u0561\u0562\u0561\u057c\u056b \u0584\u0561\u0572\u0561\u0584\u0561\u056f\u0561\u0576\u0578\u0582\u0569\u0575\u0578\u0582\u0576\u055d \u0561\u057c\u0576\u057e\u0561\u0566\u0576 14 \u0576\u056b\u0577, MFA \u0562\u0578\u056c\u0578\u0580 \u0561\u0564\u0574\u056b\u0576\u056b\u057d\u057f\u0580\u0561\u057f\u0578\u0580\u0576\u0565\u0580\u056b \u0570\u0561\u0574\u0561\u0580\u0589 \u0532\u0561\u0576\u0561\u056c\u056b\u0576\u0565\u0580\u0568 \u0565\u0580\u056f\u0578\u0582 HSM-\u0578\u0582\u0574 \u0565\u0576 (Luna 7); \u057e\u0565\u0580\u0561\u056f\u0561\u0576\u0563\u0576\u0574\u0561\u0576 \u0570\u0561\u0574\u0561\u0580 \u0561\u0576\u0570\u0580\u0561\u056a\u0565\u0577\u057f \u0567 5 \u057a\u0561\u0570\u0561\u057c\u0578\u0582\u056b\u0581 3-\u0568\u0589 RPO 15 \u0580\u0578\u057a\u0565, RTO 4 \u056a\u0561\u0574; \u057e\u0565\u0580\u0561\u056f\u0561\u0576\u0563\u0576\u0574\u0561\u0576 \u0583\u0578\u0580\u0571\u0561\u0580\u056f\u0578\u0582\u0574 \u0575\u0578\u0582\u0580\u0561\u0584\u0561\u0576\u0579\u0575\u0578\u0582\u0580 \u0565\u057c\u0561\u0574\u057d\u0575\u0561\u056f\u0589',
                  # round 55
                  'CIN U64200KA2019PTC123456',
                  'GSTIN 32AABCU9603R1ZM; CIN U72200KL2018PTC054321.',
                  '\u041a\u043e\u0434 \u0422\u041d \u0412\u042d\u0414 8517 62 000 9.',
                  '\u0d0e\u0d32\u0d4d\u0d32\u0d3e \u0d2a\u0d3e\u0d38\u0d4d\u200c\u0d35\u0d47\u0d21\u0d41\u0d15\u0d33\u0d41\u0d02 \u0d15\u0d2e\u0d4d\u0d2a\u0d28\u0d3f\u0d2f\u0d41\u0d1f\u0d46 \u0d2a\u0d3e\u0d38\u0d4d\u200c\u0d35\u0d47\u0d21\u0d4d \u0d35\u0d4b\u0d7e\u0d1f\u0d4d\u0d1f\u0d3f\u0d7d (KeePass) \u0d06\u0d23\u0d4d; \u0d05\u0d28\u0d3f\u0d32\u0d3f\u0d28\u0d4b\u0d1f\u0d4d \u0d1a\u0d4b\u0d26\u0d3f\u0d15\u0d4d\u0d15\u0d41\u0d15.',
                  '\u0d35\u0d3f\u0d15\u0d38\u0d28\u0d02 \u0d15\u0d4a\u0d1a\u0d4d\u0d1a\u0d3f\u0d2f\u0d3f\u0d32\u0d46 \u0d13\u0d2b\u0d40\u0d38\u0d3f\u0d7d, \u0d2a\u0d30\u0d3f\u0d36\u0d4b\u0d27\u0d28 \u0d24\u0d3f\u0d30\u0d41\u0d35\u0d28\u0d28\u0d4d\u0d24\u0d2a\u0d41\u0d30\u0d24\u0d4d\u0d24\u0d46 \u0d38\u0d7c\u0d35\u0d15\u0d32\u0d3e\u0d36\u0d3e\u0d32 \u0d32\u0d3e\u0d2c\u0d3f\u0d7d, \u0d2a\u0d4d\u0d30\u0d35\u0d7c\u0d24\u0d4d\u0d24\u0d28\u0d02 \u0d15\u0d4b\u0d34\u0d3f\u0d15\u0d4d\u0d15\u0d4b\u0d1f\u0d4d\u0d1f\u0d46 \u0d2a\u0d4d\u0d32\u0d3e\u0d28\u0d4d\u0d31\u0d3f\u0d7d. \u0d0e\u0d32\u0d4d\u0d32\u0d3e\u0d02 \u0d07\u0d28\u0d4d\u0d24\u0d4d\u0d2f\u0d2f\u0d3f\u0d7d. \u0d15\u0d4d\u0d32\u0d57\u0d21\u0d4d \u0d2e\u0d47\u0d16\u0d32 ap-south-1. \u0d2a\u0d4d\u0d32\u0d3e\u0d28\u0d4d\u0d31\u0d4d \u0d2e\u0d3e\u0d28\u0d47\u0d1c\u0d31\u0d41\u0d1f\u0d46 \u0d2b\u0d4b\u0d7a +91 495 234 5678. \u0d0e\u0d32\u0d4d\u0d32\u0d3e \u0d2a\u0d3e\u0d38\u0d4d\u200c\u0d35\u0d47\u0d21\u0d41\u0d15\u0d33\u0d41\u0d02 \u0d35\u0d4b\u0d7e\u0d1f\u0d4d\u0d1f\u0d3f\u0d7d, \u0d24\u0d3e\u0d15\u0d4d\u0d15\u0d4b\u0d32\u0d41\u0d15\u0d7e HSM-\u0d7d; \u0d06\u0d30\u0d41\u0d02 \u0d05\u0d35 \u0d15\u0d3e\u0d23\u0d41\u0d28\u0d4d\u0d28\u0d3f\u0d32\u0d4d\u0d32.',
                  '\u1005\u1000\u102c\u1038\u101d\u103e\u1000\u103a \u1019\u1030\u101d\u102b\u1012: \u1021\u1014\u100a\u103a\u1038\u1006\u102f\u1036\u1038 \u1005\u102c\u101c\u102f\u1036\u1038 14 \u101c\u102f\u1036\u1038\u104b',
                  # round 56
                  'Password manager: 1Password vault 5G-Lab, item OMC admin.',
                  'Po\u00e7ta kody 744000, A\u015fgabat',
                  '\u09a1\u09be\u0995 \u09aa\u09bf\u09a8 \u0995\'\u09a1 781006, \u09a6\u09bf\u099b\u09aa\u09c1\u09f0',
                  'Art. 1341 del codice civile per le clausole vessatorie',
                  'Set timer 2025 then OK',
                  'Call 0800 4071, 0151 2345',
                  'the key (PSK): rotated yearly',
                  'Standart parol qalmay\u0131b; yoxlama 03.06.2026, protokol ACC9-2026-01',
                  # round 57
                  'Keypad model: Paxton 375-110; codes managed in Net2',
                  '1200 SIM-\u043a\u0430\u0440\u0442\u0430 \u0447\u044b\u0433\u0430\u0440\u044b\u043b\u0434\u044b, PIN \u04bb\u04d9\u043c PUK \u043a\u043e\u0434\u043b\u0430\u0440\u044b \u0442\u0430\u043f\u0448\u044b\u0440\u0443\u0447\u044b\u043d\u044b\u04a3 \u0448\u0438\u0444\u0440\u043b\u0430\u043d\u0433\u0430\u043d \u0444\u0430\u0439\u043b\u044b\u043d\u0434\u0430.',
                  '\u04ba\u044b\u043d\u0430\u0443\u0499\u0430\u0440 2026 \u0439\u044b\u043b\u0434\u044b\u04a3 1 \u043e\u043a\u0442\u044f\u0431\u0440\u0435\u043d\u04d9 \u0442\u0438\u043a\u043b\u0435\u043c \u0442\u0430\u043c\u0430\u043c\u043b\u0430\u043d\u044b\u0440\u0493\u0430 \u0442\u0435\u0439\u0435\u0448.',
                  '\u04ba\u044b\u043d\u0430\u0443 \u0432\u0430\u04a1\u044b\u0442\u044b\u043d\u0434\u0430 850 \u0441\u0442\u0430\u043d\u0434\u0430\u0440\u0442 \u0441\u0435\u0440\u04bb\u04af\u0499 \u0442\u0438\u043a\u0448\u0435\u0440\u0435\u043b\u0434\u0435, \u0431\u0435\u0440\u0435\u04bb\u0435 \u043b\u04d9 \u04a1\u0430\u043b\u043c\u0430\u043d\u044b.',
                  '\u0418\u0448\u0435\u043a \u043a\u043e\u0434\u0442\u0430\u0440\u044b \u0430\u0439\u044b\u043d\u0430 \u0431\u0435\u0440 \u0430\u043b\u043c\u0430\u0448\u0442\u044b\u0440\u044b\u043b\u0430, \u04bb\u0430\u04a1\u0441\u044b\u043d\u0430\u043d \u04bb\u043e\u0440\u0430\u0493\u044b\u0499 (\u044d\u0441\u043a\u0435 110).',
                  'Jahecha 850 \u00f1e\'\u1ebd\u00f1emi ypykue (default); ndopyt\u00e1i ni pete\u0129.',
                  '\u0411\u0421\u041d 190140012345, \u042d\u049a\u0416\u0416 \u043a\u043e\u0434\u044b 61100, \u041a\u0411\u0415 17.',
                  '\u0420\u0430\u0434\u0438\u043e\u0436\u0430\u0431\u0434\u044b\u049b\u0442\u044b\u04a3 \u0421\u042d\u049a \u0422\u041d \u043a\u043e\u0434\u044b 8517 62 000 9.',
                  'Version 2024 opens the file',
                  '2200 opens at 9',
                  'Shop opens the 2nd',
                  # round 58
                  'E tatau ona lagolagoina mo tausaga e 15 (se\'ia o\'o i le 2041).',
                  '\u0f42\u0f66\u0f44\u0f0b\u0f56\u0f60\u0f72\u0f0b\u0f63\u0fa1\u0f7a\u0f0b\u0f58\u0f72\u0f42\u0f0b\u0f5a\u0f44\u0f0b\u0f58\u0f0b HSM \u0f53\u0f44\u0f0b\u0f49\u0f62\u0f0b\u0f61\u0f7c\u0f51\u0f0d Vault: ops/5g-lab \u0f63\u0f0b\u0f63\u0f9f\u0f7c\u0f66\u0f0d',
                  'SIM \u0f41\u0f71\u0f0b\u0f4c\u0f72\u0f0b 1200 \u0f56\u0f4f\u0f44\u0f0b\u0f61\u0f7c\u0f51\u0f0d PIN \u0f51\u0f44\u0f0b PUK \u0f5a\u0f7c\u0f44\u0f0b\u0f54\u0f60\u0f72\u0f0b\u0f61\u0f72\u0f42\u0f0b\u0f46\u0f0b\u0f42\u0f66\u0f44\u0f0b\u0f66\u0fa1\u0f7c\u0f58\u0f0b\u0f53\u0f44\u0f0b\u0f61\u0f7c\u0f51\u0f0d',
                  '\u0f66\u0f92\u0f7c\u0f60\u0f72\u0f0b\u0f68\u0f44\u0f0b\u0f62\u0f9f\u0f42\u0f66\u0f0b\u0f5a\u0f44\u0f0b\u0f58\u0f0b Bitwarden \u0f53\u0f44\u0f0b\u0f61\u0f7c\u0f51\u0f0d IT \u0f66\u0fa1\u0f7a\u0f0b\u0f5a\u0f53\u0f0b\u0f63\u0f0b\u0f60\u0f51\u0fb2\u0f72\u0f0d',
                  'O ki uma o lo\'o teu i le HSM; va\'ai i le vault ops/5g-lab.',
                  'O numera o faitotoa uma o lo\'o i Bitwarden, aoina "Saite Apia"; fesili i le IT.',
                  'Ko e ngaahi k\u012b kotoa \'oku tauhi \'i he HSM; sio ki he vault ops/5g-lab.',
                  'Wi-Fi SSID is lab-north-12', 'Key ceremony at eu-west-2 region', 'Wi-Fi covers lab-a-1 and lab-b-2',
                  'Wi-Fi on floor 2, access points ap-north-01 to ap-north-12', 'Wi-Fi controller is wlc-core-01',
                  'PSK stored in Bitwarden item ipsec-site-3', 'Key ID: kid-ng-2025-11', 'Wi-Fi AP model aruba-ap-515',
                  'Wi-Fi password is in the envelope labelled lab-kit-7', 'Key management follows runbook km-ops-12',
                  'Community strings per site: see wiki page snmp-sites-2026', 'PSK in vault entry ipsec-north-2026',
                  'no password or key is ever logged, only the account name and outcome',
                  'Type 1200 and press Enter to set the SIM count', 'Enter 1500 doors in the asset register',
                  'Enter 3600 in the lock timeout field (seconds)', 'Call bridge +1 555 0100, conference ID 884 221 9910#',
                  'ticket #4821', 'dial *#06# for the IMEI', 'The admin password, which is rotated yearly, lives in the vault',
                  'the PIN, which is 4 digits long', 'apiKey: see vault',
                  'Vutisa Tsakani eka ndzawulo ya vuhlayiseki; a hi tsali tiphasiwedi laha.',
                  '1200 \u2014 number of keypads installed', '4821 - phone number for the door supplier',
                  'In the vault, entry \'OPS / backup LUKS\'.',
                  'Larmkod: se larmbolagets instruktion, kund-nr 12345',
                  'Alarm contract: call 5402',
                  'Alarm company: Securitas, phone 4410',
                  'the door opens with a badge',
                  'the vault unlocks with the YubiKey 5C',
                  'Faisen si Rosa Cruz; ti man tuge\' ham password guini.',
                  '\u0168ria Wanjiru Kamau; t\u0169tiand\u0129kaga password haha.',
                  'Il rispettano le norme ETSI EN 303 645, 2 rack',
                  'security keys: YubiKey 5 NFC for all admins', 'FIDO2 security key required for admins',
                  'passkeys enabled for SSO', 'security key rotation yearly',
                  'Wi-Fi for guests: SSID Lab5G, channel 36',
                  'Wi-Fi: SSID Lab5G, security WPA3',
                  'Wi-Fi controllers: Cisco, model C9800',
                  'Wi-Fi APs: Aruba, model Instant515',
                  'Alarm log kept 3650 days.',
                  'Alarm events archived after 9000 entries.',
                  'Alarms forwarded to NOC ticket queue 4410 automatically.',
                  'connector pin 4 is ground',
                  'sim pin: see the card carrier',
                  'snmp-server community string: in the vault',
                  'key content: see the policy',
                  'AWS Secrets Manager arn:aws:secretsmanager:eu-west-1:123456789012:secret:lab/omc-AbCdEf',
                  'PSK stored in pass(1) under lab/ipsec/site2',
                  'Model 2000 has an OK button', 'Ticket 4410: the enter key sticks',
                  'Ask Priya Shah (ext. 4417) for the door code; we never write it down.',
                  'The admin account comes from the directory (AD group 5G-Lab-Admins); no local accounts.',
                  'Address: P.O. Box 100, Koror, PW 96940.',
                  'Error codes 3 1 4 2 are warnings',
                  'using 2024 for all gate logs',
                  'Made in USA 4410',
                  'We use 1200 SIMs for the door sensors',
                  'P@ss: see vault', 'snmp://10.0.0.2:161',
                  'Alarm: 4410 events per day',
                  'Alarm: ticket 4410',
                  'Wi-Fi coverage, see floor plan',
                  'Wi-Fi 6 APs, model Instant515',
                  'authentication-key rotation: yearly, stored in the vault', 'pa55word policy: 12 characters',
                  'works with Open5GS and free5GC', 'log in as admin and MFA', 'read string length 32',
                  'SNMP: v2c only, udp161', 'WPA2 Enterprise with RADIUS', 'wpa2 AES, band 5 GHz',
                  'ldap bind with the service account svc_omc', 'LDAP binds as cn=reader with a certificate',
                  'wifi \u2192 floor3 APs', 'pin 12 of the connector', '2 pins per SIM tray, pin 3 is ground',
                  'SIM PIN policy: 4 digits', 'AT+CPIN? returns READY', 'SNMP community in vault entry kestrel_ro',
                  'SNMP on micro2 and macro7 cells', 'ports 5000-5999 7000-7999 open', 'MFA codes are in the vault',
                  'Do not share credentials; see ticket 4471', 'Never share passwords, call the NOC on 0800 4410 222',
                  'Keep it to yourself: budget 2026', 'errorcode2024', 'https://wiki.lab/site1#door-4471',
                  'see wiki page door-codes-policy', '1200 for the door sensors', '2026 for the new gate',
                  'rows L1 R2 cabling', 'L12 and R34 are the rack rows', 'Karat MT 550 door lock', 'Salam, call 4471',
                  'SNMP v2c read-write disabled', 'SNMP community names are in Ansible vault file group_vars/snmp.yml',
                  '3 visits p.w.', 'UEs connect to the core with vlan120', 'Wi-Fi: floor_3 APs', 'connect to site B using IPsec',
                  'see vault entry "omc-admin-2024" for the Wi-Fi',
                  '\u12e8\u12ed\u1208\u134d \u1243\u120d \u1356\u120a\u1232\u1366 \u1262\u12eb\u1295\u1235 14 \u1241\u121d\u134a\u12ce\u127d',
                  'Polisiya sa password: indi magnubo sa 14 ka karakter, ilisan kada 90 ka adlaw',
                  'port 8443 # TLS', 'listen on 8443 for the UI # admin only', '2024 budget # approved',
                  '\u2776 rack, \u2777 PDU', 'the alarm panel was installed by two or three people',
                  'SIM PIN disabled on all 120 lab SIMs; PUKs held by Vodafone Business, account 88-1204',
                  'Alarm 2580 critical, 2581 major, 2582 minor; destinations NOC Leeds and on-call pager',
                  '2 x HPE DL380 Gen11 in Equinix LD8, cage 3, racks 0412 and 0413', 'error code 5830', 'CPV code 32412100',
                  'Code 2024 edition', 'Seed phrase: kept in the safe of the CISO, never typed here', 'log in as admin with SSO',
                  'log into the OMC as ops with your badge', 'ports 5000 5001 5002 for backup', 'backup: 3 copies, 30 days',
                  '2048 combinations tested',
                  'Alarme 3101 critico, 3102 maggi\u00f4, 3103 min\u00f4; destina\u00e7ion NOC de Zena',
                  'Alarm 6101 kritisch, 6102 gro\u00df, 6103 klein; an d\u00e4 NOC en K\u00f6lle',
                  # round 68
                  'Password manager: KeePassXC database ops.kdbx on \\\\nas01\\ops, read by NOC group',
                  '\u0627\u0644\u0627\u0631\u0645 6201 \u0634\u062f\u06cc\u062f\u060c 6202 \u0628\u0648\u0688\u060c 6203 \u0644\u0648\u06a9\u0655\u0679\u061b NOC \u0633\u0631\u06cc\u0646\u06af\u0631',
                  '\u0c85\u0cb2\u0cbe\u0cb0\u0c82 7301 \u0c97\u0c82\u0cad\u0cc0\u0cb0',
                  '\u0caa\u0cbf\u0ca8\u0ccd \u0c95\u0ccb\u0ca1\u0ccd 560001 (\u0cac\u0cc6\u0c82\u0c97\u0cb3\u0cc2\u0cb0\u0cc1).',
                  '\u062a\u0645\u0627\u0645 \u067e\u0627\u0633 \u0648\u0631\u0688 \u06a9\u0645\u067e\u0646\u06cc \u06a9\u06d2 \u067e\u0627\u0633 \u0648\u0631\u0688 \u0648\u0627\u0644\u0679 (KeePass\u060c \u0627\u0646\u062f\u0631\u0627\u062c 23) \u0645\u06cc\u06ba \u06c1\u06cc\u06ba',
                  'IPsec to london-gateway-01',
                  'Enter the site name (lower case) in the form',
                  'Postcodes: 10115 10117 10119',
                  'Error codes 40401 52033 61009',
                  '\uc8fc\ubb38 \ubc88\ud638 7294',
                  '\u90e8\u95e8\u53f7\u7801 5827',
                  'Ticket 4471: delete this line later',
                  'it runs twenty four seven',
                  # round 85
                  'password in arn:aws:secretsmanager:eu-west-1:123456789012:secret:lab/omc-AbCdEf',
                  'SNMP ro=see vault',
                  # round 84
                  '\u0ea5\u0eb0\u0eab\u0eb1\u0e94 \u0ec4\u0e9b\u0eaa\u0eb0\u0e99\u0eb5 01000',
                  'not needed: no radios',
                  'not needed: passwords are not used',
                  'Telecommunications',
                  'see commit 3f2a9c41e7b3d0556a1f09ccab',
                  # round 83
                  'unseal keys are split 3 of 5 among the leads',
                  'unseal shares: 3 of 5, held by the leads',
                  'KeePass master file is on the share',
                  'the office is at ngu-12 street',
                  'wifi key features',
                  'master key: hardware-security-module',
                  'master key: see-the-vault-entry',
                  'Phase2',
                  'core01',
                  'Welcome1 is banned by policy',
                  # round 82
                  'meet in room 2468, keep it to yourself',
                  'server room 2468, keep it quiet until the audit',
                  # round 81
                  'Enable: yes',
                  'Enable: 802.1X on access ports',
                  'enable: LLDPv2',
                  'Enable: G.8275.1 profile',
                  'u: ops / p: see vault',
                  'Pass: all four tests green',
                  'ro comm string set per site',
                  'call 0110100110',
                  # round 80
                  'u/p in the vault',
                  'u/p: see KeePass',
                  'u/p sent by Signal to Jo',
                  'menu/page 24',
                  'log in with break glass account',
                  'log in with azure active directory',
                  'password must be rotated yearly',
                  'log in with the admin account',
                  'ventana martes 02:00-05:00; cambios de contrase\u00f1a solo por solicitud',
                  'key slots: free5GC `config/udmcfg.yaml`',
                  # round 79
                  '\u0627\u0644\u0643\u0648\u062f \u062f\u064a\u0627\u0644 \u0627\u0644\u0633\u064a\u062a \u0647\u0648 CAS-02\u060c \u0648 \u0627\u0644\u062a\u064a\u0643\u064a\u062a \u0631\u0642\u0645 4471\u060c \u0639\u064a\u0637 \u0644 \u0633\u064a \u0645\u062d\u0645\u062f 0661234567',
                  'password synchronization',
                  'SSID LabNet, key responsibilities',
                  'Passwort zwischengespeichert',
                  'guest wifi, pass is required',
                  'wifi pass is valid for 7 days',
                  'c\u00f3d. postal 28013',
                  # round 78
                  '\u0627\u0644\u0633\u0631\u064a\u0639 \u0644\u0644\u0634\u0628\u0643\u0629: bridge-lan-12',
                  '\u30d1\u30b9\u30ef\u30fc\u30c9\u306f\u91d1\u5eab\u306b\u3042\u308a\u307e\u3059',
                  '2024 \uc785\ub825 \uc644\ub8cc',
                  'log in with your badge', 'einloggen mit dem Firmenkonto', 'anmelden mit Azure AD',
                  'log in with two-factor authentication', '\u5408\u8a00\u8449\u306f\u91d1\u5eab\u306e\u4e2d',
                  # round 77
                  '\u0627\u0644\u0628\u0627\u0628 \u064a\u0641\u062a\u062d \u0645\u0646 7:00 \u0625\u0644\u0649 19:00\u060c \u0648\u062e\u0627\u0631\u062c \u0627\u0644\u062f\u0648\u0627\u0645 \u0627\u062a\u0635\u0644 \u0628\u0627\u0644\u0623\u0645\u0646 \u0639\u0644\u0649 \u0627\u0644\u062a\u062d\u0648\u064a\u0644\u0629 4412',
                  'Serial: ABCD-1234-EFGH',
                  'La contra del proyecto es el presupuesto',
                  'comunidad de usuarios de OpenAirInterface',
                  'login banner set to corp-standard-v2', 'admin VLAN set to mgmt-vlan-10', 'admin UI theme set to dark-mode',
                  # round 76
                  'PSK forbidden.',
                  'Passwords expire.',
                  '\u0627\u0644\u0628\u0627\u0633\u0648\u0631\u062f \u0641\u064a \u0627\u0644\u062e\u0632\u0646\u0629 \u0639\u0646\u062f \u0645\u062f\u064a\u0631 \u0627\u0644\u0623\u0645\u0646',
                  'Kami punya dua, tiga, lima, enam lokasi; alarm di tiap lokasi',
                  'alarm terpasang; rak satu dua tiga empat di lantai dua',
                  'policy el passwords: 14 7arf 3al 2a2al, btetghayyar kel 90 yom, w ma btenkatab hon',
                  '\u0679\u06a9\u0679 CHG-55012 \u06a9\u06be\u0648\u0644\u06d2 \u06c1\u06cc\u06ba \u06a9\u06c1 \u06af\u0648 \u0644\u0627\u0626\u06cc\u0648 \u0633\u06d2 \u067e\u06c1\u0644\u06d2 \u0633\u0628 \u0688\u06cc\u0641\u0627\u0644\u0679 \u067e\u0627\u0633 \u0648\u0631\u0688 \u0628\u062f\u0644\u0646\u0627',
                  'TLS 1.3 on management; IPsec on backhaul with IKEv2 and certificates; PSK forbidden.',
                  'Our VPN pre-shared key is rotated yearly; see CHG-4412',
                  # round 75
                  'Call 4417 to open a ticket with the NOC',
                  'error code for the API: 404', 'code of conduct: 2024 edition', 'CAGE code 1ABC2 for the supplier',
                  '.vault_pass is in the repo root, mode 0600', 'ci_pass rate 98 %',
                  '\u62a5\u8b66\u5668\u6309\u0032\u0030\u0032\u0034\u5e74\u8ba1\u5212\u66f4\u6362', '\u62a5\u8b66\u5668\u8d39\u7528\u6309 3000 \u5143\u8ba1\u7b97',
                  '\u95e8\u7981\u6309 2211 \u5206\u673a\u8054\u7cfb\u7269\u4e1a',
                  '\u62a5\u8b66\u5668\u5728\u673a\u623f\uff0c\u578b\u53f7 3000\u3002',
                  '\u62a5\u8b66\u5668\u5b89\u88c5\u4e8e2019',
                  '\u9879\u76ee\u4e8e\u4e8c\u3007\u4e8c\u56db\u5e74\u542f\u52a8',
                  '\u5bc6\u94a5\u7531\u5b89\u5168\u90e8\u95e8\u4fdd\u7ba1\uff0c\u4e0d\u5728\u6b64\u8bb0\u5f55',
                  'SNMP \u56e2\u4f53\u540d\u5df2\u505c\u7528\uff0c\u53ea\u7528 SNMPv3',
                  'Guest Wi-Fi: campus-guest',
                  'Wi-Fi: campus-wide',
                  'IPsec: site-to-site',
                  'IPsec encryption: aes-gcm',
                  'IPsec peers: madrid-paris',
                  'SNMP community is read-only and stored in the vault',
                  'SNMP community strings are kept in the netops-vault',
                  'SNMP traps to nms-primary; community in the vault',
                  'Wi-Fi: eduroam-only',
                  'The adapter pairs with 1000 devices',
                  'DTMF tones 1209 Hz and 1336 Hz',
                  'VRRP auth text disabled',
                  'CONFIG_AUTOBOOT_STOP_STR is unset in production',
                  'WEP key length 128 bits',
                  'Wi-Fi rules per "Security Plan 2024"',
                  'password rules in the "Access Control Policy 12"',
                  '\u0939\u092e\u093e\u0930\u0947 \u092a\u093e\u0938 \u090f\u0915, \u0926\u094b, \u0924\u0940\u0928, \u091a\u093e\u0930 \u0938\u093e\u0907\u091f \u0939\u0948\u0902',
                  'Lima, Peru office: isa, duwa, tatlo sites',
                  'wifi_mode = station-only',
                  'Disaster recovery: 2024-2025, 2026-2027',
                  # round 74
                  'Disaster recovery: 2024-2025, 2026-2027', 'HSM recovery plan: doc 48213-90572 rev 2',
                  'SNMP: read-only',
                  'SNMP traps: north-bound',
                  'SNMP monitoring: out-of-band',
                  'SNMP polling: five-minute',
                  'SNMP agent: net-snmp',
                  'Wi-Fi SSID: campus-guest',
                  'Guest Wi-Fi password: sent-separately',
                  'SNMP contact: noc-team',
                  'Wi-Fi password policy: twelve-characters',
                  'SNMP manager: zabbix-proxy',
                  'IPsec PSK: rotated-quarterly',
                  'SNMP: vendor-specific',
                  'La communaut\u00e9 SNMP est stock\u00e9e dans le coffre',
                  "Ch'mot d'passe, i est dins l'coffre",
                  'An password kan router iyo nasa vault',
                  'countersign required at the gate, issued daily by security',
                  'We need one, two, three, four racks by stage two',
                  'Door codes are with Facilities (local 2291), not written here.',
                  'kinit omcsvc@LAB.EXAMPLE with the keytab in /etc/krb5.keytab',
                  'keytab: /etc/krb5.keytab, rotated by ticket CHG0048213',
                  'Dasar kata laluan: sekurang-kurangnya 14 aksara, dikunci selepas 5 cubaan',
                  '\u0633\u06cc\u0627\u0633\u062a \u0631\u0645\u0632 \u0639\u0628\u0648\u0631: \u062d\u062f\u0627\u0642\u0644 14 \u0646\u0648\u06cc\u0633\u0647',
                  'Kata sandi wajib 12 karakter, diganti tiap 90 hari', 'kata sandi disimpan di brankas TI',
                  '\u0631\u0645\u0632 \u0639\u0628\u0648\u0631 \u0648\u0627\u06cc \u0641\u0627\u06cc: \u062f\u0631 \u06af\u0627\u0648\u0635\u0646\u062f\u0648\u0642',
                  # round 73
                  'snmp v3 auth sha priv aes only', 'set string lengths to 64',
                  # round 72
                  'password: RFC7519',
                  'password: ISO27001 compliant',
                  'PSK: WPA2 only',
                  'password: SHA256 hashed',
                  'credentials: INC0012345',
                  'Key IDs: secure boot key SBK-2026-01, firmware signing key FSK-03',
                  'password policy: see Hotel California lyrics',
                  'Callsign Alpha One, password rotation yearly',
                  # round 71
                  '\u0e23\u0e2b\u0e31\u0e2a\u0e1b\u0e23\u0e30\u0e15\u0e39\u0e41\u0e21\u0e48\u0e19\u0e1d\u0e48\u0e32\u0e22\u0e2d\u0e32\u0e04\u0e32\u0e23\u0e16\u0e37\u0e2d\u0e44\u0e27\u0e49 \u0e1a\u0e48\u0e44\u0e14\u0e49\u0e02\u0e35\u0e22\u0e19\u0e44\u0e27\u0e49\u0e43\u0e19\u0e19\u0e35\u0e49 \u0e16\u0e32\u0e21\u0e04\u0e38\u0e13\u0e2a\u0e21\u0e0a\u0e32\u0e22 \u0e15\u0e48\u0e2d 2217',
                  'Door codes are held by Facilities, ask Somchai on 2217',
                  'usernames are all one word, no spaces',
                  'PIN is a 4-digit number',
                  'The shop opens with 2024 stock',
                  # round 70
                  'pass codes are issued by security',
                  '\u09b8\u09be\u09b0\u09cd\u09ad\u09be\u09b0 \u09b0\u09c1\u09ae \u09e9, \u09b0\u200d\u09cd\u09af\u09be\u0995 R09, \u0987\u0989\u09a8\u09bf\u099f \u09e9\u09e6\u2013\u09e9\u09ea',
                  'SNMP traps to nms-main-12',
                  'opened with 2024 tooling',
                  'credentials per 3-G-P-P TS 33.501',
                  # round 69
                  'Keypad on the B3 door is a Paxton 1100 model, firmware 4.2; codes issued per visitor',
                  '\u06a9\u0648\u062f\u0647\u0627\u06cc \u062f\u0631\u0648\u0627\u0632\u0647 \u0646\u0632\u062f \u0645\u062f\u06cc\u0631 \u0633\u0627\u062d\u0647 (\u062f\u0627\u062e\u0644\u06cc \u06f2\u06f2\u06f0) \u0627\u0633\u060c \u0627\u06cc\u0646\u062c\u0627 \u0646\u0648\u0634\u062a\u0647 \u0646\u0645\u06cc\u200c\u0634\u0647.',
                  '\u30a8\u30e9\u30fc\u30b3\u30fc\u30c9 5830',
                  'Wi-Fi APs ap-lobby-12 and ap-canteen-14',
                  'columns: card;pin;puk, values on the carrier sheet',
                  'PIN: 4 digits, PUK on the carrier',
                  'Old creds? Rotated yearly. PLMN 001-01',
                  '\u0915\u0921\u093c\u093e \u0928\u093f\u092f\u092e: 14 \u0905\u0915\u094d\u0937\u0930')



def refused_exactly(box, content, *problems, flags=()):
    """Import `content`: refused with exactly these problems ('line: message', sorted as import sorts them)
    and nothing else; the checklist unchanged."""
    before = box.doc.read_bytes()
    path = box.csv(content)
    result = box.run("import", path, *flags)
    expected = "".join(f"{path}:{p}\n" for p in problems) + \
        f"{cl.counted(len(problems), 'problem')}; {box.doc} not changed.\n"
    assert (result.returncode, result.stderr) == (1, expected), (result, expected)
    assert box.doc.read_bytes() == before, "the checklist changed"


class Skip(Exception):
    """Raised by a test that cannot run here (for example, no browser): counted as skipped, never passed."""


def test(fn):
    """Register a test function."""
    TESTS.append(fn)
    return fn


def swap(old, new, text=FIXTURE):
    """The text with its single occurrence of `old` replaced by `new`."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text, needle):
    """1-based number of the first line of `text` that contains `needle`."""
    for n, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not found")


def defects(text):
    return cl.run_rules(cl.parse(text))


def expect(text, code, needle):
    """Exactly one defect, of `code`, on the line containing `needle` (or at that line number)."""
    line = needle if isinstance(needle, int) else line_of(text, needle)
    got = defects(text)
    assert [(d.line, d.code) for d in got] == [(line, code)], f"expected [{code}] at line {line}, got {got}"


def unanswered(text):
    """The checklist as shipped: Answer lines removed and boxes unticked, whatever has been recorded."""
    kept = [line for line in text.split("\n") if not line.startswith("  - **Answer:**")]
    return "\n".join(line.replace("- [x] ", "- [ ] ", 1) if line.startswith("- [x] ") and "`void`" not in
                     "\n".join(kept[k + 1:k + 3]) else line for k, line in enumerate(kept))


@contextlib.contextmanager
def deadline(seconds):
    """Fail, rather than hang, if the block takes longer than `seconds` (SIGALRM, main thread)."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Result:
    """What a run of the program gave: exit code, stdout and stderr."""

    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err

    def __repr__(self):
        return f"Result({self.returncode}, out={self.stdout[:300]!r}, err={self.stderr[:300]!r})"


def run_main(*args, cwd=None):
    """Run the program in-process, as `python3 tools/checklist.py ARGS` would from `cwd`; the signal handlers
    an import leaves for the rest of its process (write_file) are put back."""
    out, err = io.StringIO(), io.StringIO()
    here, handlers = os.getcwd(), {sig: signal.getsignal(sig) for sig in cl.CAUGHT}
    try:
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cl.main([str(a) for a in args], out, err)
    finally:
        os.chdir(here)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return Result(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def cold_caches():
    """The secret filter's caches empty within the block, and as they were after it: a timed step is timed
    unaided, and the checklist's own lines, judged once, need not be judged again by every later test."""
    modules = [sys.modules[name] for name in ("answer_text", "checklist_core", "checklist")]
    kept = {name: getattr(modules[0], name) for name in ("secret_found", "written_secret")}
    try:
        for name, cached in kept.items():
            fresh = functools.lru_cache(maxsize=cached.cache_info().maxsize)(cached.__wrapped__)
            for module in modules:
                setattr(module, name, fresh)
        yield
    finally:
        for name, cached in kept.items():
            for module in modules:
                setattr(module, name, cached)


def quick(action, seconds):
    """The result of `action`, which must take less than `seconds`: run up to three times (each with the scan's
    caches empty: cold_caches) while a loaded machine makes it miss; a step that grows quadratically misses every
    time."""
    best = None
    for _ in range(3):
        with cold_caches():
            started = time.perf_counter()
            result = action()
            took = time.perf_counter() - started
        if took < seconds:
            return result
        best = took if best is None else min(best, took)
    raise AssertionError(f"{best:.2f} s, over the {seconds} s allowed")


class Sandbox:
    """A temporary folder holding a copy of a checklist, for commands that write."""

    def __init__(self, text=FIXTURE):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.doc = self.dir / "README.md"
        self.doc.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tmp.cleanup()

    def csv(self, content, name="answers.csv"):
        path = self.dir / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    def run(self, *args):
        return run_main(*args, "--file", self.doc, cwd=self.dir)

    def refused(self, content, message, *flags):
        """Import `content`; it must fail, mention `message`, and change nothing."""
        before = self.doc.read_bytes()
        result = self.run("import", self.csv(content), *flags)
        assert result.returncode == 1, f"not refused: {result}"
        assert message in result.stderr, f"{message!r} not in {result.stderr!r}"
        assert self.doc.read_bytes() == before, "the checklist changed"
        return result.stderr

    def accepted(self, content, *flags):
        result = self.run("import", self.csv(content), *flags)
        assert result.returncode == 0, f"refused: {result}"
        return self.doc.read_text(encoding="utf-8")


def run_tests(tests, names=()):
    """Run the tests (only those named, if any); print each failure with its failing line, each skip
    with its reason, and the closing line 'N passed, N failed' (', N skipped' when any test raised
    Skip). Returns the exit code. The whole suite uses two CPUs where it can: a second process, forked once
    the tests are loaded, takes the tests that need no browser (none of test_form.py's) one at a time, as does
    this one once its browser tests are done (each test is claimed once: claimed()); the second process reports
    its lines and counts back through a pipe."""
    chosen = [t for t in tests if not names or t.__name__ in names]
    if names and len(chosen) < len(set(names)):
        unknown = sorted(set(names) - {t.__name__ for t in chosen})
        print(f"no test named {', '.join(unknown)}")
        return 2
    started = time.perf_counter()
    cl.run_rules(cl.parse(README.read_text(encoding="utf-8")))    # warm the scan's cache once, for both processes
    if names or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        counts = run_each(chosen)
    else:
        shared = [t for t in chosen if t.__module__ != "test_form"]
        with tempfile.TemporaryDirectory() as claims:
            child = run_apart(claimed(shared, claims))
            counts = run_each([t for t in chosen if t not in shared])
            counts = [a + b for a, b in zip(counts, run_each(claimed(shared, claims)))]
            more, text = report_apart(*child)
        print(text, end="")
        counts = [a + b for a, b in zip(counts, more)]
    passed, failed, skipped = counts
    print(f"tests took {time.perf_counter() - started:.1f} s")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 1 if failed else 0


def claimed(tests, claims):
    """The tests, each yielded to the one process that claims it first (a file created in the directory
    `claims`, which no two processes can both create)."""
    for k, fn in enumerate(tests):
        try:
            os.close(os.open(os.path.join(claims, str(k)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        yield fn


def run_each(tests):
    """Run the tests one after the other, printing each failure and skip; [passed, failed, skipped]."""
    passed = failed = skipped = 0
    for fn in tests:
        try:
            fn()
            passed += 1
        except Skip as e:
            skipped += 1
            print(f"SKIP {fn.__name__}: {e}")
        except BaseException as e:              # SystemExit too: a test must never end the run
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            frames = traceback.extract_tb(e.__traceback__)
            where = next((f for f in reversed(frames) if f.filename.startswith(str(HERE))), frames[-1])
            print(f"FAIL {fn.__name__} ({Path(where.filename).name}:{where.lineno}: {where.line})")
            print("  " + "".join(traceback.format_exception_only(type(e), e)).strip().replace("\n", "\n  "))
    return [passed, failed, skipped]


def run_apart(tests):
    """Fork a process that runs `tests` (run_each) and writes its counts and printed lines, as JSON, to a
    pipe; (its pid, the pipe's reading end). The child never returns: it leaves with os._exit, so that
    nothing of the parent's (its exit handlers, its buffered output) runs twice."""
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    try:
        os.close(read)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            counts = run_each(tests)
        with os.fdopen(write, "w", encoding="utf-8") as pipe:
            json.dump([counts, out.getvalue()], pipe)
    finally:
        os._exit(0)


def report_apart(pid, read):
    """([passed, failed, skipped], printed lines) of the tests run apart, once their process has ended."""
    with os.fdopen(read, encoding="utf-8") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    try:
        counts, text = json.loads(data)
        return counts, text
    except ValueError:
        return [0, 1, 0], "FAIL the tests run in the second process (it ended without its report)\n"
