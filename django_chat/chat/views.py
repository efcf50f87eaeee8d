from channels.layers import get_channel_layer
from django.http import HttpResponse, JsonResponse

from django_chat.chat.stats import STATS


async def healthz(request):
    return HttpResponse(b"ok", content_type="text/plain")


async def stats(request):
    layer = get_channel_layer()
    return JsonResponse(STATS.as_json(layer=type(layer).layer_kind, backlog=layer.backlog_now()))
