from django.conf import settings
from django.http import HttpResponse, JsonResponse

from django_chat.chat.stats import STATS


async def healthz(request):
    return HttpResponse(b"ok", content_type="text/plain")


async def stats(request):
    return JsonResponse(STATS.as_json(layer="redis" if settings.CHAT_REDIS_URL else "memory"))
