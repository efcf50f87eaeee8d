from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class Message(models.Model):
    """One chat message as a member sent it: the payload byte for byte, and whether it was a text
    frame (UTF-8 bytes) or a binary one. The FastAPI backend writes and reads these rows too, so the
    creation time is a database default rather than something only Django's ORM would fill in."""

    room = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    is_text = models.BooleanField()
    payload = models.BinaryField()
    created = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["room", "id"], name="chat_message_room_id")]  # a room's last N

    def frame(self) -> dict:
        """The stored message as the keyword arguments of a consumer's send()."""
        payload = bytes(self.payload)
        return {"text_data": payload.decode()} if self.is_text else {"bytes_data": payload}
