"""Vietnamese first, English by choice: the visitor's language and the page strings."""

from __future__ import annotations

from flask import current_app, request

LANGUAGES = ("vi", "en")

STRINGS = {
    "title": {"vi": "Bản đồ bảo vệ hạ tầng bưu chính, viễn thông, CNTT – TP. Cần Thơ",
              "en": "Protection map of postal, telecom and IT infrastructure – Cần Thơ"},
    "short_title": {"vi": "Bản đồ bảo vệ hạ tầng BC-VT-CNTT Cần Thơ", "en": "Cần Thơ infrastructure protection map"},
    "search_placeholder": {"vi": "Tìm quận/huyện, trạm, mục tiêu, mã…", "en": "Search districts, stations, sites, IDs…"},
    "search": {"vi": "Tìm", "en": "Search"},
    "no_results": {"vi": "Không tìm thấy kết quả", "en": "No results"},
    "layers": {"vi": "Lớp dữ liệu", "en": "Layers"},
    "legend": {"vi": "Chú giải", "en": "Legend"},
    "filters": {"vi": "Lọc sự cố", "en": "Incident filters"},
    "types": {"vi": "Loại vụ việc", "en": "Types"},
    "since": {"vi": "Từ ngày", "en": "From"},
    "until": {"vi": "Đến ngày", "en": "To"},
    "apply": {"vi": "Áp dụng", "en": "Apply"},
    "reset": {"vi": "Bỏ lọc", "en": "Reset"},
    "zoom_to": {"vi": "Phóng tới lớp", "en": "Zoom to layer"},
    "limit_exceeded": {"vi": "Chỉ hiển thị {n} đối tượng đầu tiên trong khung nhìn: hãy phóng to để xem đủ.",
                       "en": "Only the first {n} features in view are shown: zoom in to see them all."},
    "loading": {"vi": "Đang tải…", "en": "Loading…"},
    "load_error": {"vi": "Không tải được lớp", "en": "Could not load layer"},
    "coordinates": {"vi": "Tọa độ", "en": "Coordinates"},
    "language_other": {"vi": "English", "en": "Tiếng Việt"},
    "no_layers": {"vi": "Chưa có dữ liệu: chạy `webmap demo` hoặc `webmap import`.",
                  "en": "No data yet: run `webmap demo` or `webmap import`."},
    "features": {"vi": "đối tượng", "en": "features"},
    "attribution": {
        "vi": "Ranh giới hành chính: Cổng TTĐT Chính phủ (gis.chinhphu.vn) qua dự án dvhcvn của Đào Hoàng Sơn (GPL-3.0); "
              "mã và tên đơn vị hành chính: Tổng cục Thống kê. Doanh nghiệp, tuyến cáp, trạm, mục tiêu và sự cố: dữ liệu mẫu hư cấu.",
        "en": "Administrative boundaries: Government Portal of Viet Nam (gis.chinhphu.vn) via the dvhcvn project by Đào Hoàng Sơn "
              "(GPL-3.0); unit codes and names: General Statistics Office of Viet Nam. Enterprises, cables, stations, sites and "
              "incidents: fictional demo data.",
    },
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Không", "en": "No"},
    "area": {"vi": "Vùng", "en": "Area"},
    "point": {"vi": "Điểm", "en": "Point"},
    "error": {"vi": "Lỗi", "en": "Error"},
    "upload": {"vi": "Nạp dữ liệu", "en": "Upload data"},
    "upload_done": {"vi": "Đã nạp dữ liệu", "en": "Data uploaded"},
    "upload_file": {"vi": "Tệp dữ liệu", "en": "File"},
    "upload_encoding": {"vi": "Bảng mã", "en": "Text encoding"},
    "upload_auto": {"vi": "Tự nhận biết", "en": "Detect"},
    "upload_crs": {"vi": "Hệ tọa độ (khi tệp không có)", "en": "CRS (when the file has none)"},
    "upload_owner": {"vi": "Doanh nghiệp quản lý (mã)", "en": "Owner (code)"},
    "upload_no_file": {"vi": "Chưa chọn tệp.", "en": "No file chosen."},
    "upload_hint_enterprise": {"vi": "Tệp thay thế toàn bộ công trình của doanh nghiệp bạn trong lớp đã chọn; công trình của "
                                     "doanh nghiệp khác không bị ảnh hưởng. Shapefile cần nén .zip kèm .shx, .dbf, .prj, .cpg.",
                               "en": "The file replaces all of your enterprise's features in the chosen layer; other "
                                     "enterprises' features are untouched. Shapefiles go zipped with .shx, .dbf, .prj, .cpg."},
    "upload_hint_staff": {"vi": "Tệp trở thành phiên bản mới của cả lớp (phiên bản cũ được lưu lại).",
                          "en": "The file becomes the new version of the whole layer (earlier versions are kept)."},
    "login": {"vi": "Đăng nhập", "en": "Log in"},
    "logout": {"vi": "Đăng xuất", "en": "Log out"},
    "username": {"vi": "Tên đăng nhập", "en": "Username"},
    "password": {"vi": "Mật khẩu", "en": "Password"},
    "login_failed": {"vi": "Tên đăng nhập hoặc mật khẩu không đúng.", "en": "Wrong username or password."},
    "login_throttled": {"vi": "Đăng nhập sai quá nhiều lần: thử lại sau {minutes} phút.",
                        "en": "Too many failed logins: try again in {minutes} minute(s)."},
    "change_password": {"vi": "Đổi mật khẩu", "en": "Change password"},
    "must_change_password": {"vi": "Bạn phải đổi mật khẩu ban đầu trước khi sử dụng hệ thống.",
                             "en": "You must change your initial password before using the system."},
    "password_rules": {"vi": "Ít nhất 12 ký tự, có 3 trong 4 loại: chữ thường, chữ hoa, chữ số, ký hiệu (hoặc ít nhất 20 ký tự); "
                             "không chứa tên đăng nhập; không dùng mật khẩu phổ biến.",
                       "en": "At least 12 characters with 3 of: lower case, upper case, digits, symbols (or at least 20 "
                             "characters); not containing the username; not a common password."},
    "old_password": {"vi": "Mật khẩu hiện tại", "en": "Current password"},
    "new_password": {"vi": "Mật khẩu mới", "en": "New password"},
    "confirm_password": {"vi": "Nhập lại mật khẩu mới", "en": "Repeat the new password"},
    "password_mismatch": {"vi": "Hai lần nhập mật khẩu mới không khớp.", "en": "The two new passwords differ."},
    "password_changed": {"vi": "Đã đổi mật khẩu.", "en": "Password changed."},
    "back": {"vi": "Về bản đồ", "en": "Back to the map"},
    # the audit log page (/admin/audit, admins only)
    "audit_log": {"vi": "Nhật ký truy cập", "en": "Audit log"},
    "audit_at": {"vi": "Thời điểm (UTC)", "en": "When (UTC)"},
    "audit_actor": {"vi": "Người thực hiện", "en": "Who"},
    "audit_action": {"vi": "Hành động", "en": "Action"},
    "audit_target": {"vi": "Đối tượng", "en": "Target"},
    "audit_target_contains": {"vi": "Đối tượng chứa", "en": "Target contains"},
    "audit_detail": {"vi": "Chi tiết", "en": "Detail"},
    "audit_source": {"vi": "Nguồn", "en": "Source"},
    "audit_all_actions": {"vi": "Tất cả", "en": "All"},
    "audit_filter": {"vi": "Lọc", "en": "Filter"},
    "audit_none": {"vi": "Không có mục nào.", "en": "No entries."},
    "audit_newer": {"vi": "← Mới hơn", "en": "← Newer"},
    "audit_older": {"vi": "Cũ hơn →", "en": "Older →"},
    "audit_page": {"vi": "Trang {n}", "en": "Page {n}"},
    "audit_verify": {"vi": "Kiểm tra toàn vẹn", "en": "Verify chain"},
    "audit_intact": {"vi": "Nhật ký nguyên vẹn: {n} mục, mã băm cuối {hash}.",
                     "en": "Audit log intact: {n} entries, last hash {hash}."},
    "audit_anchor": {"vi": "Mốc cần ghi lại và giữ ở nơi khác (giấy, máy khác), để đối chiếu sau bằng "
                           "`webmap audit --verify --anchor`:",
                     "en": "Anchor to write down and keep elsewhere (on paper, on another machine), to check later "
                           "with `webmap audit --verify --anchor`:"},
    "audit_altered": {"vi": "Nhật ký đã bị sửa đổi tại mục {seq}: {reason}", "en": "Audit log altered at entry {seq}: {reason}"},
    "audit_unreadable": {"vi": "Không kiểm tra được nhật ký: {reason}", "en": "The audit log cannot be verified: {reason}"},
    "audit_verify_deferred": {"vi": "Nhật ký có {n} mục: việc kiểm tra mất vài giây.",
                              "en": "The log holds {n} entries: checking it takes a few seconds."},
    "audit_verify_now": {"vi": "Kiểm tra ngay", "en": "Check now"},
    "audit_bad_date": {"vi": "{field}: cần một ngày dạng YYYY-MM-DD, nhận được “{value}”.",
                       "en": "{field}: a date YYYY-MM-DD is expected, got “{value}”."},
    "audit_bad_range": {"vi": "“Từ ngày” phải trước hoặc trùng “Đến ngày”.", "en": "“From” must not be after “To”."},
    "audit_bad_page": {"vi": "Số trang phải là số nguyên từ 1 đến {n}.", "en": "The page must be a whole number from 1 to {n}."},
    "audit_bad_text": {"vi": "{field}: quá dài (tối đa {n} ký tự).", "en": "{field}: too long (at most {n} characters)."},
    "audit_bad_action": {"vi": "Hành động không hợp lệ: “{value}”.", "en": "Not an action: “{value}”."},
}


def current_language() -> str:
    """``?lang=`` first, then the ``lang`` cookie, then the configured default."""
    chosen = request.args.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return current_app.config.get("DEFAULT_LANGUAGE", "vi")


def strings(lang: str) -> dict:
    return {key: texts.get(lang) or texts["vi"] for key, texts in STRINGS.items()}
