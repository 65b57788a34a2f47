# Reads JSON strings, one a line, and prints 1 or 0 for each: whether Django's
# EmailValidator (django.core.validators.validate_email) accepts it.
# Run with Debian's /usr/bin/python3 (python3-django).
import json
import sys

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

out = []
for line in sys.stdin:
    value = json.loads(line)
    try:
        validate_email(value)
        out.append("1")
    except ValidationError:
        out.append("0")
print("\n".join(out))
