"""The console's routes, under ``/ui`` (mounted by ``create_app``)."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from rollwise_server.ui import admin, editor, flags, promote, rollouts, signin

__all__ = ["UI_ROUTES"]

STATIC = Path(__file__).parent / "static"
ENV = "/ui/envs/{env}"
FLAG = f"{ENV}/flags/{{key}}"

UI_ROUTES: list[BaseRoute] = [
    Route("/ui", signin.root, methods=["GET"]),
    Route("/ui/sign-in", signin.sign_in, methods=["GET", "POST"]),
    Route("/ui/sign-out", signin.sign_out, methods=["POST"]),
    Route("/ui/switch", signin.switch, methods=["GET"]),
    Route(f"{ENV}/flags", flags.flags_page, methods=["GET"]),
    Route(f"{ENV}/flags/new", editor.new_flag, methods=["GET", "POST"]),
    Route(FLAG, flags.flag_page, methods=["GET"]),
    Route(f"{FLAG}/edit", editor.edit_flag, methods=["GET", "POST"]),
    Route(f"{FLAG}/revert", flags.revert_page, methods=["GET", "POST"]),
    Route(f"{FLAG}/promote", promote.promote_page, methods=["GET", "POST"]),
    Route(f"{FLAG}/rollout", rollouts.rollout_page, methods=["GET"]),
    Route(f"{FLAG}/rollout/live", rollouts.rollout_live, methods=["GET"]),
    Route(f"{FLAG}/rollout/plan", rollouts.plan_page, methods=["GET", "POST"]),
    Route(f"{FLAG}/rollout/{{action}}", rollouts.rollout_action, methods=["POST"]),
    Route(f"{FLAG}/rollouts/{{run:int}}/review", rollouts.review_page, methods=["GET"]),
    Route(f"{FLAG}/rollouts/{{run:int}}/lessons", rollouts.save_lessons, methods=["POST"]),
    Route(f"{FLAG}/{{action:str}}", flags.kill_page, methods=["GET", "POST"]),
    Route(f"{ENV}/segments", admin.segments_page, methods=["GET"]),
    Route(f"{ENV}/segments/{{key}}", admin.segment_page, methods=["GET"]),
    Route(f"{ENV}/segments/{{key}}/revert", admin.segment_revert, methods=["GET", "POST"]),
    Route(f"{ENV}/metrics", admin.metrics_page, methods=["GET"]),
    Route("/ui/audit", admin.audit_page, methods=["GET"]),
    Route("/ui/tokens", admin.tokens_page, methods=["GET", "POST"]),
    Route("/ui/tokens/{token_id}/revoke", admin.revoke_token, methods=["POST"]),
    Mount("/ui/static", StaticFiles(directory=STATIC), name="static"),
]
