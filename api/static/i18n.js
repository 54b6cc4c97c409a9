// Labels and formats of the console: Chinese by default, English on request.
// The choice is kept in localStorage; every view re-renders on a change.

const STORAGE_KEY = "gridsight.lang";
const TIME_ZONE = "Asia/Shanghai";

const zh = {
  "app.title": "GridSight 视频巡查",
  "app.subtitle": "城市网格化管理指挥中心 · 视频通道",
  "nav.main": "主导航",
  "nav.review": "审核",
  "nav.cameras": "摄像头",
  "nav.incidents": "事件",
  "nav.stats": "统计",
  "nav.users": "用户",
  "users.title": "用户与令牌",
  "users.users": "控制台用户",
  "users.username": "用户名",
  "users.role": "角色",
  "users.state": "状态",
  "users.created": "创建时间",
  "users.actions": "操作",
  "users.state.active": "启用",
  "users.state.disabled": "已停用",
  "users.state.revoked": "已吊销",
  "users.disable": "停用",
  "users.enable": "启用",
  "users.reset": "重置密码",
  "users.addTitle": "添加用户",
  "users.add": "添加",
  "users.secret": "{name} 的密码：{password}（只显示这一次，请转交本人）",
  "users.disabled": "已停用 {name}，其会话已结束",
  "users.enabled": "已启用 {name}",
  "users.tokens": "API 令牌",
  "users.tokensHint": "机器调用接口用的令牌；令牌本身只在创建时显示一次（gridsight token create）。",
  "users.tokenName": "名称",
  "users.lastUsed": "最近使用",
  "users.revoke": "吊销",
  "users.revoked": "已吊销令牌 {name}",
  "header.logout": "退出登录",
  "header.help": "帮助",
  "header.switchLang": "切换语言",
  "header.otherLang": "English",
  "header.user": "{name} · {role}",
  "common.skip": "跳到主要内容",
  "common.loading": "加载中…",
  "common.error": "出错了：{msg}",
  "common.network": "网络错误，请检查连接",
  "common.forbidden": "无权限执行此操作",
  "common.notFound": "未找到",
  "common.retry": "重试",
  "common.none": "—",
  "common.back": "返回",
  "common.prev": "上一页",
  "common.next": "下一页",
  "common.all": "全部",
  "common.range": "第 {from}–{to} 条，共 {total} 条",
  "common.empty": "暂无数据",
  "common.close": "关闭",
  "common.showData": "查看数据表",
  "common.open": "打开原图",
  "common.bytes": "{n} KB",
  "common.sessionExpired": "会话已过期，请重新登录",
  "common.unknownRoute": "页面不存在",
  "role.viewer": "查看员",
  "role.operator": "值班员",
  "role.trainer": "训练员",
  "role.admin": "管理员",

  "login.title": "登录",
  "login.username": "用户名",
  "login.password": "密码",
  "login.submit": "登录",
  "login.busy": "正在登录…",
  "login.wrong": "用户名或密码错误",
  "login.limited": "尝试次数过多，请 {s} 秒后再试",
  "login.limitedNoTime": "尝试次数过多，请稍后再试",
  "login.failed": "登录失败：{msg}",

  "review.title": "审核",
  "review.queue": "待审核队列",
  "review.position": "待审核 · 第 {i} 条 / 已加载 {n} 条",
  "review.empty": "审核队列已清空",
  "review.emptyHint": "新的检测结果会自动出现在这里。",
  "review.readOnly": "只读：查看员不能作出审核结论",
  "review.incident": "事件 #{id}",
  "review.details": "查看事件详情",
  "review.imageAlt": "事件 #{id} 的标注证据图：{problem}，{camera}",
  "review.noImage": "此事件没有标注图",
  "review.noClip": "此事件没有视频片段",
  "review.clipLabel": "事件 #{id} 的视频片段",
  "review.rejectReason": "驳回理由（可选）",
  "review.rejectHint": "Enter 驳回（理由可不填）· Esc 取消",
  "review.relabelTitle": "改为哪一类？按数字键选择",
  "review.relabelMore": "0 下一页（第 {p}/{n} 页）",
  "review.relabelCancel": "Esc 取消",
  "review.current": "当前",
  "review.done.confirm": "已确认 #{id}，将立案",
  "review.done.reject": "已驳回 #{id}",
  "review.done.relabel": "#{id} 已改为「{name}」并立案",
  "review.undoHint": "按 U 撤销",
  "review.undone": "已撤销对 #{id} 的判定",
  "review.undoFailed": "无法撤销 #{id}：{msg}",
  "review.nothingToUndo": "没有可撤销的判定",
  "review.saveFailed": "#{id} 的判定未保存：{msg}",
  "review.taken": "#{id} 已由他人审核",
  "review.noTaxonomy": "未能加载问题类型",
  "fact.camera": "摄像头",
  "fact.address": "地址",
  "fact.streetCommunity": "街道 / 社区",
  "fact.problem": "问题类型",
  "fact.zone": "区域",
  "fact.firstSeen": "首次发现",
  "fact.opened": "开启时间",
  "fact.lastSeen": "最后出现",
  "fact.cleared": "消除时间",
  "fact.persistence": "持续时长",
  "fact.score": "置信度",
  "fact.recurrences": "复发次数",
  "fact.state": "事件状态",
  "fact.review": "审核结论",
  "fact.minutes": "{n} 分钟",
  "key.confirm": "确认",
  "key.reject": "驳回",
  "key.relabel": "改类",
  "key.undo": "撤销",
  "key.clip": "视频",
  "key.image": "图片",
  "key.next": "下一条",
  "key.prev": "上一条",
  "key.help": "快捷键",
  "help.title": "快捷键",
  "help.j": "下一条",
  "help.k": "上一条",
  "help.y": "确认并立案",
  "help.n": "驳回（可填理由，Enter 提交，Esc 跳过）",
  "help.r": "改类，再按数字键 1–9 选择类型",
  "help.u": "撤销上一次判定",
  "help.v": "切换标注图 / 视频片段",
  "help.q": "显示 / 隐藏本帮助",
  "help.esc": "关闭弹层",
  "help.guide": "值班员手册（审核、案件、快捷键）",

  "cameras.title": "摄像头",
  "cameras.street": "街道",
  "cameras.allStreets": "全部街道",
  "cameras.summary": "共 {n} 路 · 在线 {live} · 异常 {bad}",
  "cameras.noFrame": "暂无画面",
  "cameras.lastFrame": "最新画面：{ago}",
  "cameras.never": "尚未收到画面",
  "cameras.rates": "接收 {r} 帧/分 · 分析 {a} 帧/分",
  "cameras.refresh": "每 10 秒自动刷新 · 更新于 {t}",
  "cameras.frameAlt": "{name} 的最新画面（含区域标注）",
  "camState.live": "在线",
  "camState.stalled": "中断",
  "camState.failed": "故障",
  "camState.connecting": "连接中",
  "camState.ended": "已结束",
  "camState.stopped": "已停止",
  "camState.unknown": "未知",
  "ago.now": "刚刚",
  "ago.s": "{n} 秒前",
  "ago.m": "{n} 分钟前",
  "ago.h": "{n} 小时前",
  "ago.d": "{n} 天前",

  "incidents.title": "事件",
  "incidents.filters": "筛选",
  "incidents.none": "没有符合条件的事件",
  "filter.state": "状态",
  "filter.problem": "问题类型",
  "filter.camera": "摄像头",
  "filter.street": "街道",
  "filter.review": "审核结论",
  "filter.reset": "清除筛选",
  "col.id": "编号",
  "col.evidence": "证据",
  "col.camera": "摄像头",
  "col.street": "街道",
  "col.problem": "问题类型",
  "col.state": "状态",
  "col.review": "审核",
  "col.opened": "开启时间",
  "col.lastSeen": "最后出现",
  "incState.open": "新发现",
  "incState.present": "持续存在",
  "incState.cleared": "已消除",
  "incState.recurred": "再次出现",
  "incState.active": "活动中",
  "reviewState.pending": "待审核",
  "reviewState.confirmed": "已确认",
  "reviewState.rejected": "已驳回",
  "reviewState.relabelled": "已改类",
  "reviewState.auto": "自动立案",
  "incident.title": "事件 #{id}",
  "incident.facts": "基本信息",
  "incident.timeline": "时间线",
  "incident.evidence": "证据",
  "incident.clip": "视频片段",
  "incident.cases": "案件",
  "incident.noCases": "尚未立案",
  "incident.noEvents": "暂无事件记录",
  "incident.reviewNote": "审核备注",
  "incident.verdict": "审核",
  "incident.relabelTo": "改为",
  "evKind.annotated": "标注图",
  "evKind.clean": "原图",
  "evKind.clip": "视频",
  "evKind.fresh": "最新图",
  "evKind.after": "处置后",
  "event.opened": "发现并开启",
  "event.present": "仍然存在",
  "event.cleared": "已消除",
  "event.recurred": "再次出现",

  "case.title": "案件 #{id}",
  "case.open": "案件 #{id}",
  "case.status": "状态",
  "case.platformId": "平台案件号",
  "case.deadline": "处置时限",
  "case.overdue": "已超期",
  "case.verification": "核查",
  "case.incident": "所属事件",
  "case.code": "事项代码",
  "case.name": "事项名称",
  "case.description": "问题描述",
  "case.department": "主管部门",
  "case.recurrenceOf": "复发自",
  "case.history": "状态历史",
  "case.outbox": "发送记录",
  "case.retry": "重新发送",
  "case.retried": "已重新排队 {n} 条消息",
  "case.noHistory": "暂无状态记录",
  "case.noOutbox": "暂无发送记录",
  "col.time": "时间",
  "col.from": "原状态",
  "col.to": "新状态",
  "col.source": "来源",
  "col.note": "备注",
  "col.kind": "类型",
  "col.sendState": "发送状态",
  "col.attempts": "尝试次数",
  "col.lastError": "最近错误",
  "caseStatus.queued": "待发送",
  "caseStatus.accepted": "已受理",
  "caseStatus.filed": "已立案",
  "caseStatus.dispatched": "已派遣",
  "caseStatus.handled": "已处置",
  "caseStatus.verified": "已核查",
  "caseStatus.closed": "已结案",
  "caseStatus.voided": "已作废",
  "verification.checking": "核查中",
  "verification.cleared": "核查：已消除",
  "verification.not_resolved": "核查：未解决",
  "sendState.pending": "待发送",
  "sendState.sending": "发送中",
  "sendState.done": "已发送",
  "sendState.dead": "发送失败（已停止重试）",
  "sendKind.file": "立案",
  "sendKind.update": "更新",
  "source.gridsight": "系统",
  "source.poll": "平台轮询",
  "source.callback": "平台回调",
  "source.operator": "值班员",
  "source.platform": "平台",

  "stats.title": "统计",
  "stats.period": "统计周期",
  "stats.days": "近 {n} 天",
  "stats.kpiIncidents": "事件",
  "stats.kpiFiled": "立案",
  "stats.kpiClosed": "结案",
  "stats.kpiPrecision": "审核准确率",
  "stats.byStreet": "各街道事件",
  "stats.byDay": "每日事件",
  "stats.byProblem": "各类问题准确率",
  "stats.byCamera": "各摄像头",
  "stats.ranking": "街道处置排名",
  "stats.noReviews": "暂无审核",
  "stats.precisionOf": "{p}（{c}/{t}）",
  "stats.dayTip": "{day}：事件 {i}，立案 {f}，结案 {c}",
  "stats.streetTip": "{street}：事件 {i}，立案 {f}，结案 {c}",
  "series.incidents": "事件",
  "series.filed": "立案",
  "series.closed": "结案",
  "series.unfiled": "未立案",
  "series.filedOpen": "已立案未结案",
  "col.rank": "排名",
  "col.disposal": "处置率",
  "col.closed": "结案",
  "col.filed": "立案",
  "col.incidents": "事件",
  "col.confirmed": "确认",
  "col.rejected": "驳回",
  "col.precision": "准确率",
  "col.day": "日期",
  "col.medianToFile": "立案用时中位数",
};

const en = {
  "app.title": "GridSight video patrol",
  "app.subtitle": "Grid-management command centre · video channel",
  "nav.main": "Main navigation",
  "nav.review": "Review",
  "nav.cameras": "Cameras",
  "nav.incidents": "Incidents",
  "nav.stats": "Statistics",
  "nav.users": "Users",
  "users.title": "Users and tokens",
  "users.users": "Console users",
  "users.username": "User name",
  "users.role": "Role",
  "users.state": "State",
  "users.created": "Created",
  "users.actions": "Actions",
  "users.state.active": "Active",
  "users.state.disabled": "Disabled",
  "users.state.revoked": "Revoked",
  "users.disable": "Disable",
  "users.enable": "Enable",
  "users.reset": "Reset password",
  "users.addTitle": "Add a user",
  "users.add": "Add",
  "users.secret": "Password of {name}: {password} (shown this once: hand it to them)",
  "users.disabled": "{name} disabled and logged out",
  "users.enabled": "{name} enabled",
  "users.tokens": "API tokens",
  "users.tokensHint": "Tokens for machines calling the API; a token itself is shown only once, when created (gridsight token create).",
  "users.tokenName": "Name",
  "users.lastUsed": "Last used",
  "users.revoke": "Revoke",
  "users.revoked": "Token {name} revoked",
  "header.logout": "Log out",
  "header.help": "Help",
  "header.switchLang": "Switch language",
  "header.otherLang": "中文",
  "header.user": "{name} · {role}",
  "common.skip": "Skip to main content",
  "common.loading": "Loading…",
  "common.error": "Something went wrong: {msg}",
  "common.network": "Network error, check the connection",
  "common.forbidden": "You are not allowed to do this",
  "common.notFound": "Not found",
  "common.retry": "Retry",
  "common.none": "—",
  "common.back": "Back",
  "common.prev": "Previous",
  "common.next": "Next",
  "common.all": "All",
  "common.range": "{from}–{to} of {total}",
  "common.empty": "No data",
  "common.close": "Close",
  "common.showData": "Show the data table",
  "common.open": "Open full size",
  "common.bytes": "{n} KB",
  "common.sessionExpired": "Your session has expired; please sign in again",
  "common.unknownRoute": "No such page",
  "role.viewer": "Viewer",
  "role.operator": "Operator",
  "role.trainer": "Trainer",
  "role.admin": "Administrator",

  "login.title": "Sign in",
  "login.username": "User name",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.busy": "Signing in…",
  "login.wrong": "Wrong user name or password",
  "login.limited": "Too many attempts; try again in {s} s",
  "login.limitedNoTime": "Too many attempts; try again later",
  "login.failed": "Sign-in failed: {msg}",

  "review.title": "Review",
  "review.queue": "Review queue",
  "review.position": "Waiting for review · {i} of {n} loaded",
  "review.empty": "Nothing left to review",
  "review.emptyHint": "New detections appear here automatically.",
  "review.readOnly": "Read-only: viewers cannot give verdicts",
  "review.incident": "Incident #{id}",
  "review.details": "Incident details",
  "review.imageAlt": "Annotated evidence of incident #{id}: {problem}, {camera}",
  "review.noImage": "This incident has no annotated image",
  "review.noClip": "This incident has no clip",
  "review.clipLabel": "Clip of incident #{id}",
  "review.rejectReason": "Reason for rejecting (optional)",
  "review.rejectHint": "Enter to reject (the reason may stay empty) · Esc to cancel",
  "review.relabelTitle": "Relabel as? Press a number",
  "review.relabelMore": "0 next page ({p}/{n})",
  "review.relabelCancel": "Esc to cancel",
  "review.current": "current",
  "review.done.confirm": "Confirmed #{id}; it will be filed",
  "review.done.reject": "Rejected #{id}",
  "review.done.relabel": "#{id} relabelled as “{name}” and filed",
  "review.undoHint": "U to undo",
  "review.undone": "Verdict on #{id} undone",
  "review.undoFailed": "Cannot undo #{id}: {msg}",
  "review.nothingToUndo": "No verdict to undo",
  "review.saveFailed": "Verdict on #{id} not saved: {msg}",
  "review.taken": "#{id} was already reviewed by someone else",
  "review.noTaxonomy": "Could not load the problem types",
  "fact.camera": "Camera",
  "fact.address": "Address",
  "fact.streetCommunity": "Street / community",
  "fact.problem": "Problem",
  "fact.zone": "Zone",
  "fact.firstSeen": "First seen",
  "fact.opened": "Opened",
  "fact.lastSeen": "Last seen",
  "fact.cleared": "Cleared",
  "fact.persistence": "Persisted",
  "fact.score": "Score",
  "fact.recurrences": "Recurrences",
  "fact.state": "Incident state",
  "fact.review": "Review",
  "fact.minutes": "{n} min",
  "key.confirm": "Confirm",
  "key.reject": "Reject",
  "key.relabel": "Relabel",
  "key.undo": "Undo",
  "key.clip": "Clip",
  "key.image": "Image",
  "key.next": "Next",
  "key.prev": "Previous",
  "key.help": "Keys",
  "help.title": "Keyboard",
  "help.j": "next item",
  "help.k": "previous item",
  "help.y": "confirm and file",
  "help.n": "reject (optional reason, Enter submits, Esc skips)",
  "help.r": "relabel, then a number 1–9 picks the type",
  "help.u": "undo the last verdict",
  "help.v": "switch between image and clip",
  "help.q": "show / hide this help",
  "help.esc": "close the overlay",
  "help.guide": "Operators' guide (review, cases, keys)",

  "cameras.title": "Cameras",
  "cameras.street": "Street",
  "cameras.allStreets": "All streets",
  "cameras.summary": "{n} cameras · {live} live · {bad} with problems",
  "cameras.noFrame": "No picture yet",
  "cameras.lastFrame": "Last frame: {ago}",
  "cameras.never": "No frame received yet",
  "cameras.rates": "{r} frames/min received · {a} analysed",
  "cameras.refresh": "Refreshes every 10 s · updated {t}",
  "cameras.frameAlt": "Latest frame of {name} with its zones",
  "camState.live": "Live",
  "camState.stalled": "Stalled",
  "camState.failed": "Failed",
  "camState.connecting": "Connecting",
  "camState.ended": "Ended",
  "camState.stopped": "Stopped",
  "camState.unknown": "Unknown",
  "ago.now": "just now",
  "ago.s": "{n} s ago",
  "ago.m": "{n} min ago",
  "ago.h": "{n} h ago",
  "ago.d": "{n} days ago",

  "incidents.title": "Incidents",
  "incidents.filters": "Filters",
  "incidents.none": "No incident matches",
  "filter.state": "State",
  "filter.problem": "Problem",
  "filter.camera": "Camera",
  "filter.street": "Street",
  "filter.review": "Review",
  "filter.reset": "Clear filters",
  "col.id": "No.",
  "col.evidence": "Evidence",
  "col.camera": "Camera",
  "col.street": "Street",
  "col.problem": "Problem",
  "col.state": "State",
  "col.review": "Review",
  "col.opened": "Opened",
  "col.lastSeen": "Last seen",
  "incState.open": "Open",
  "incState.present": "Present",
  "incState.cleared": "Cleared",
  "incState.recurred": "Recurred",
  "incState.active": "Active",
  "reviewState.pending": "Pending",
  "reviewState.confirmed": "Confirmed",
  "reviewState.rejected": "Rejected",
  "reviewState.relabelled": "Relabelled",
  "reviewState.auto": "Filed automatically",
  "incident.title": "Incident #{id}",
  "incident.facts": "Facts",
  "incident.timeline": "Timeline",
  "incident.evidence": "Evidence",
  "incident.clip": "Clip",
  "incident.cases": "Cases",
  "incident.noCases": "Not filed yet",
  "incident.noEvents": "No events yet",
  "incident.reviewNote": "Review note",
  "incident.verdict": "Review",
  "incident.relabelTo": "Relabel as",
  "evKind.annotated": "Annotated",
  "evKind.clean": "Clean",
  "evKind.clip": "Clip",
  "evKind.fresh": "Fresh",
  "evKind.after": "After",
  "event.opened": "Detected and opened",
  "event.present": "Still present",
  "event.cleared": "Cleared",
  "event.recurred": "Recurred",

  "case.title": "Case #{id}",
  "case.open": "Case #{id}",
  "case.status": "Status",
  "case.platformId": "Platform case no.",
  "case.deadline": "Deadline",
  "case.overdue": "Overdue",
  "case.verification": "Verification",
  "case.incident": "Incident",
  "case.code": "Event code",
  "case.name": "Event name",
  "case.description": "Description",
  "case.department": "Department",
  "case.recurrenceOf": "Recurrence of",
  "case.history": "Status history",
  "case.outbox": "Messages to the platform",
  "case.retry": "Send again",
  "case.retried": "{n} message(s) queued again",
  "case.noHistory": "No status changes yet",
  "case.noOutbox": "No messages",
  "col.time": "Time",
  "col.from": "From",
  "col.to": "To",
  "col.source": "Source",
  "col.note": "Note",
  "col.kind": "Kind",
  "col.sendState": "State",
  "col.attempts": "Attempts",
  "col.lastError": "Last error",
  "caseStatus.queued": "Queued",
  "caseStatus.accepted": "Accepted",
  "caseStatus.filed": "Filed",
  "caseStatus.dispatched": "Dispatched",
  "caseStatus.handled": "Handled",
  "caseStatus.verified": "Verified",
  "caseStatus.closed": "Closed",
  "caseStatus.voided": "Voided",
  "verification.checking": "Checking",
  "verification.cleared": "Verified: cleared",
  "verification.not_resolved": "Verified: not resolved",
  "sendState.pending": "Pending",
  "sendState.sending": "Sending",
  "sendState.done": "Sent",
  "sendState.dead": "Failed (dead letter)",
  "sendKind.file": "File",
  "sendKind.update": "Update",
  "source.gridsight": "GridSight",
  "source.poll": "Platform poll",
  "source.callback": "Platform callback",
  "source.operator": "Operator",
  "source.platform": "Platform",

  "stats.title": "Statistics",
  "stats.period": "Period",
  "stats.days": "Last {n} days",
  "stats.kpiIncidents": "Incidents",
  "stats.kpiFiled": "Filed",
  "stats.kpiClosed": "Closed",
  "stats.kpiPrecision": "Review precision",
  "stats.byStreet": "Incidents per street",
  "stats.byDay": "Incidents per day",
  "stats.byProblem": "Precision per problem type",
  "stats.byCamera": "Per camera",
  "stats.ranking": "Street disposal ranking",
  "stats.noReviews": "not reviewed",
  "stats.precisionOf": "{p} ({c}/{t})",
  "stats.dayTip": "{day}: {i} incidents, {f} filed, {c} closed",
  "stats.streetTip": "{street}: {i} incidents, {f} filed, {c} closed",
  "series.incidents": "Incidents",
  "series.filed": "Filed",
  "series.closed": "Closed",
  "series.unfiled": "Not filed",
  "series.filedOpen": "Filed, not closed",
  "col.rank": "Rank",
  "col.disposal": "Disposal rate",
  "col.closed": "Closed",
  "col.filed": "Filed",
  "col.incidents": "Incidents",
  "col.confirmed": "Confirmed",
  "col.rejected": "Rejected",
  "col.precision": "Precision",
  "col.day": "Day",
  "col.medianToFile": "Median time to file",
};

const DICTS = { zh, en };
const listeners = new Set();

function stored() {
  try {
    const v = window.localStorage.getItem(STORAGE_KEY);
    return v === "en" || v === "zh" ? v : "zh";
  } catch {
    return "zh"; // storage disabled: Chinese
  }
}

let lang = stored();

/** The label `key` in the current language, with {name} placeholders filled from `params`. */
export function t(key, params) {
  const text = DICTS[lang][key] ?? zh[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** A label of a coded value ("camState", "live") with the raw value as the fallback. */
export function label(group, value) {
  if (value === null || value === undefined || value === "") return t("common.none");
  const key = `${group}.${value}`;
  return key in DICTS[lang] || key in zh ? t(key) : String(value);
}

export function getLang() {
  return lang;
}

export function setLang(next) {
  if (next !== "zh" && next !== "en") return;
  lang = next;
  try {
    window.localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // private mode: the choice lasts for this page only
  }
  applyDocumentLang();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function applyDocumentLang() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** Fills elements marked data-i18n (text) and data-i18n-aria (aria-label) under `root`. */
export function translateStatic(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
}

// ------------------------------------------------------------------ formats

const partsFormat = new Intl.DateTimeFormat("en-CA", {
  timeZone: TIME_ZONE,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

function parts(date) {
  const out = {};
  for (const p of partsFormat.formatToParts(date)) out[p.type] = p.value;
  return out;
}

export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "2026-03-06 18:04:05", Beijing time (the centre's clock), whatever the browser's zone. */
export function fmtTime(value, { seconds = true } = {}) {
  const d = toDate(value);
  if (!d) return t("common.none");
  const p = parts(d);
  const hms = seconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
  return `${p.year}-${p.month}-${p.day} ${hms}`;
}

/** "03-06" of an ISO day or a time. */
export function fmtDay(value) {
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value)) return value.slice(5);
  const d = toDate(value);
  if (!d) return String(value ?? "");
  const p = parts(d);
  return `${p.month}-${p.day}`;
}

/** "12 秒前" / "12 s ago"; a time in the future (a file source's video clock) is shown as a time. */
export function fmtAgo(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return t("common.none");
  const s = Math.round((now - d.getTime()) / 1000);
  if (s < -5) return fmtTime(d);
  if (s < 2) return t("ago.now");
  if (s < 60) return t("ago.s", { n: s });
  if (s < 3600) return t("ago.m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago.h", { n: Math.floor(s / 3600) });
  return t("ago.d", { n: Math.floor(s / 86400) });
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return t("common.none");
  return Number(n).toLocaleString(lang === "zh" ? "zh-CN" : "en", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A share as a percentage; accepts 0..1 or an already multiplied 0..100. */
export function fmtPct(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return t("common.none");
  const x = Number(v) <= 1 ? Number(v) * 100 : Number(v);
  return `${x.toFixed(digits)}%`;
}

export function fmtMinutes(m) {
  if (m === null || m === undefined || Number.isNaN(Number(m))) return t("common.none");
  const n = Number(m);
  return t("fact.minutes", { n: n >= 10 ? Math.round(n) : Math.round(n * 10) / 10 });
}
