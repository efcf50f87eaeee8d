import json

from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from django_chat.chat.stats import STATS


async def healthz(request):
    request.get_host()  # ALLOWED_HOSTS: DisallowedHost answers 400
    return HttpResponse(b"ok", content_type="text/plain")


async def stats(request):
    request.get_host()
    layer = get_channel_layer()
    database, db_connections = None, 0
    if settings.CHAT_APP == "full":
        from django_chat.chat.store import connections_open

        database, db_connections = connection.vendor, connections_open()
    return JsonResponse(STATS.reading(layer=type(layer).layer_kind, backlog=layer.backlog_now(),
                                      database=database, db_connections=db_connections))


@csrf_exempt  # an API endpoint for clients and the bench: they hold no CSRF token
@require_POST
def login(request):
    """App mode: `username` and `password` as form fields or JSON; answers with Django's own
    `sessionid` cookie, which both backends accept."""
    if request.content_type == "application/json":
        try:
            fields = json.loads(request.body)
        except ValueError:
            return JsonResponse({"error": "the body is not valid JSON"}, status=400)
        if not isinstance(fields, dict):
            return JsonResponse({"error": "expected a JSON object with username and password"}, status=400)
    else:
        fields = request.POST
    username, password = fields.get("username"), fields.get("password")
    if not (isinstance(username, str) and username and isinstance(password, str) and password):
        return JsonResponse({"error": "username and password are required"}, status=400)
    user = authenticate(request, username=username, password=password)
    if user is None:
        return JsonResponse({"error": "invalid username or password"}, status=401)
    auth_login(request, user)
    return JsonResponse({"username": user.get_username()})
