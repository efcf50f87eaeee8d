from django.conf import settings
from django.urls import path

from django_chat.chat import views

urlpatterns = [
    path("healthz", views.healthz),
    path("stats", views.stats),
]
if settings.CHAT_APP == "full":
    urlpatterns.append(path("login", views.login))
