#!/usr/bin/env python
"""Django's command-line utility for the chat site: `python manage.py migrate`, `createsuperuser`,
`create_bench_users N`, on the database CHAT_DATABASE_URL names."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_chat.settings")
    os.environ.setdefault("CHAT_APP", "full")  # the site's commands need its apps and database
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
