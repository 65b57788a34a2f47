"""Drives the real djangorestframework-simplejwt (Debian's package) for isis's
interoperability test. Usage:
  simplejwt.py SECRET mint USER_ID        -> {"access": …, "refresh": …}
  simplejwt.py SECRET decode TYPE TOKEN   -> the verified payload, or exit 3
  simplejwt.py SECRET hash PASSWORD       -> a Django pbkdf2_sha256 hash
"""
import json
import sys

import django
from django.conf import settings

settings.configure(
    SECRET_KEY=sys.argv[1],
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "rest_framework",
        "rest_framework_simplejwt",
    ],
    PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from rest_framework_simplejwt.exceptions import TokenError  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken  # noqa: E402

cmd = sys.argv[2]
if cmd == "mint":
    refresh = RefreshToken()
    refresh["user_id"] = int(sys.argv[3])
    print(json.dumps({"access": str(refresh.access_token), "refresh": str(refresh)}))
elif cmd == "decode":
    cls = AccessToken if sys.argv[3] == "access" else RefreshToken
    try:
        tok = cls(sys.argv[4])
    except TokenError as e:
        print(str(e), file=sys.stderr)
        sys.exit(3)
    print(json.dumps(tok.payload))
elif cmd == "hash":
    print(make_password(sys.argv[3]))
else:
    sys.exit("unknown command " + cmd)
