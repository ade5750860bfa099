"""Sending the victim's join link by text message.

``base.Notifier`` is the interface; ``outbox.OutboxNotifier`` is the embedded
default (an encrypted outbox the officer copies from, because this machine
reaches no SMS gateway); ``gateway.NotifyGateway`` posts to a GOV.UK
Notify-style HTTP API for a force that has one. The text itself is composed by
``evr_desktop.domain.sms``.
"""
