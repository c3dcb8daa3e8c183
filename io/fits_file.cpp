// FitsFile implementation over CFITSIO; every call goes through check(), which throws Error.
#include "io/fits_file.hpp"

#include <fitsio.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <filesystem>
#include <utility>

#include "common/error.hpp"

namespace astroclear::io {
namespace {

fitsfile* as_fits(void* p) { return static_cast<fitsfile*>(p); }

std::string cfitsio_text(int status) {
  char text[FLEN_STATUS] = {0};
  fits_get_errstatus(status, text);
  return text;
}

}  // namespace

std::string shape_text(std::int64_t height, std::int64_t width) {
  return std::to_string(width) + "x" + std::to_string(height);
}

void FitsFile::Closer::operator()(void* p) const noexcept {
  int status = 0;
  if (p != nullptr && fits_close_file(as_fits(p), &status) != 0) {
    std::fprintf(stderr, "astroclear: closing a FITS file failed: %s\n", cfitsio_text(status).c_str());
  }
}

FitsFile::FitsFile(std::string path, void* fptr) : path_(std::move(path)), fptr_(fptr) {}
FitsFile::FitsFile(FitsFile&&) noexcept = default;
FitsFile& FitsFile::operator=(FitsFile&&) noexcept = default;
FitsFile::~FitsFile() = default;

void* FitsFile::handle() const { return fptr_.get(); }

FitsFile FitsFile::open_image(const std::string& path, const std::string& extname) {
  FitsFile f = open(path);
  if (extname.empty()) {
    if (!f.move_to_first_image()) throw Error(path + ": no 2-D image HDU" + f.truncation_note());
  } else if (!f.move_to(extname)) {
    throw Error(path + ": no HDU with EXTNAME = '" + extname + "'" + f.truncation_note());
  }
  return f;
}

std::string FitsFile::header_text() {
  int status = 0, count = 0;
  char* text = nullptr;
  fits_hdr2str(as_fits(handle()), /*nocomments=*/0, nullptr, 0, &text, &count, &status);
  std::string header = text != nullptr ? std::string(text, static_cast<std::size_t>(count) * 80) : std::string();
  if (text != nullptr) fits_free_memory(text, &status);
  check(status, "reading the header");
  return header;
}

std::string FitsFile::truncation_note() {
  int status = 0, count = 0;
  fits_get_num_hdus(as_fits(handle()), &count, &status);
  if (status != 0 || count < 1) return "";
  fits_movabs_hdu(as_fits(handle()), count, nullptr, &status);
  LONGLONG header_start = 0, data_start = 0, data_end = 0;
  fits_get_hduaddrll(as_fits(handle()), &header_start, &data_start, &data_end, &status);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  // A whole FITS file ends where its last HDU's data (padded to 2880 bytes) ends; a file cut short
  // ends inside an HDU, whose header or data is then lost, with every HDU after it.
  if (status != 0 || ec || static_cast<LONGLONG>(size) == data_end) return "";
  return ": the file is truncated or damaged (" + std::to_string(size) + " bytes, but its last whole HDU, " +
         std::to_string(count - 1) + ", ends at byte " + std::to_string(data_end) + ")";
}

FitsFile FitsFile::open(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": file not found");
  fitsfile* fptr = nullptr;
  int status = 0;
  // The disk-file variant keeps CFITSIO from reading brackets or other extended syntax in the name.
  if (fits_open_diskfile(&fptr, path.c_str(), READONLY, &status) != 0) {
    throw Error(path + ": not a readable FITS file (" + cfitsio_text(status) + ")");
  }
  return FitsFile(path, fptr);
}

FitsFile FitsFile::create(const std::string& path) {
  if (std::filesystem::exists(path)) throw Error(path + ": exists; refusing to overwrite it");
  fitsfile* fptr = nullptr;
  int status = 0;
  if (fits_create_diskfile(&fptr, path.c_str(), &status) != 0) {
    throw Error(path + ": cannot create FITS file (" + cfitsio_text(status) + ")");
  }
  return FitsFile(path, fptr);
}

std::string FitsFile::where() const {
  if (!fptr_) return path_;
  int status = 0;
  char extname[FLEN_VALUE] = {0};
  if (fits_read_key(as_fits(handle()), TSTRING, "EXTNAME", extname, nullptr, &status) == 0) {
    return path_ + "[" + extname + "]";
  }
  int hdu = 0;
  fits_get_hdu_num(as_fits(handle()), &hdu);
  return path_ + "[HDU " + std::to_string(hdu - 1) + "]";
}

void FitsFile::check(int status, const std::string& what) const {
  if (status != 0) throw Error(where() + ": " + what + " failed (" + cfitsio_text(status) + ")");
}

int FitsFile::hdu_count() {
  int status = 0, count = 0;
  fits_get_num_hdus(as_fits(handle()), &count, &status);
  check(status, "counting HDUs");
  return count;
}

void FitsFile::move_to(int index) {
  int status = 0;
  fits_movabs_hdu(as_fits(handle()), index + 1, nullptr, &status);
  check(status, "moving to HDU " + std::to_string(index));
}

bool FitsFile::move_to(const std::string& extname) {
  int status = 0;
  fits_movnam_hdu(as_fits(handle()), ANY_HDU, const_cast<char*>(extname.c_str()), 0, &status);
  return status == 0;
}

bool FitsFile::move_to_first_image() {
  const int count = hdu_count();
  for (int i = 0; i < count; ++i) {
    move_to(i);
    int status = 0, type = 0, naxis = 0;
    fits_get_hdu_type(as_fits(handle()), &type, &status);
    fits_get_img_dim(as_fits(handle()), &naxis, &status);
    if (status == 0 && type == IMAGE_HDU && naxis == 2) return true;
  }
  return false;
}

std::pair<std::int64_t, std::int64_t> FitsFile::image_shape() {
  int status = 0, type = 0, naxis = 0;
  fits_get_hdu_type(as_fits(handle()), &type, &status);
  check(status, "reading the HDU type");
  if (type != IMAGE_HDU) throw Error(where() + ": is a table, expected a 2-D image");
  fits_get_img_dim(as_fits(handle()), &naxis, &status);
  check(status, "reading NAXIS");
  if (naxis != 2) throw Error(where() + ": NAXIS = " + std::to_string(naxis) + ", expected a 2-D image (NAXIS = 2)");
  long axes[2] = {0, 0};
  fits_get_img_size(as_fits(handle()), 2, axes, &status);
  check(status, "reading NAXIS1/NAXIS2");
  return {axes[1], axes[0]};
}

int FitsFile::image_dimensions() {
  int status = 0, type = 0, naxis = 0;
  fits_get_hdu_type(as_fits(handle()), &type, &status);
  check(status, "reading the HDU type");
  if (type != IMAGE_HDU) return 0;
  fits_get_img_dim(as_fits(handle()), &naxis, &status);
  check(status, "reading NAXIS");
  return naxis;
}

std::int64_t FitsFile::cube_planes() {
  if (image_dimensions() != 3) throw Error(where() + ": expected a 3-D image (a PSF cube)");
  int status = 0;
  long axes[3] = {0, 0, 0};
  fits_get_img_size(as_fits(handle()), 3, axes, &status);
  check(status, "reading NAXIS1-3");
  return axes[2];
}

Image FitsFile::read_cube_plane(std::int64_t plane) {
  const std::int64_t planes = cube_planes();
  if (plane < 0 || plane >= planes) {
    throw Error(where() + ": plane " + std::to_string(plane) + " asked for, but the cube has planes 0-" +
                std::to_string(planes - 1));
  }
  int status = 0;
  long axes[3] = {0, 0, 0};
  fits_get_img_size(as_fits(handle()), 3, axes, &status);
  Image image(axes[1], axes[0]);
  long first[3] = {1, 1, static_cast<long>(plane + 1)};
  float nan = std::numeric_limits<float>::quiet_NaN();
  int anynul = 0;
  fits_read_pix(as_fits(handle()), TFLOAT, first, image.height * image.width, &nan, image.pixels.data(), &anynul,
                &status);
  check(status, "reading plane " + std::to_string(plane));
  return image;
}

bool FitsFile::move_to_table_with(const std::string& column) {
  const int count = hdu_count();
  for (int i = 1; i < count; ++i) {
    move_to(i);
    int status = 0, type = 0;
    fits_get_hdu_type(as_fits(handle()), &type, &status);
    if (status == 0 && type == BINARY_TBL && has_column(column)) return true;
  }
  return false;
}

std::int64_t FitsFile::table_rows() {
  int status = 0;
  LONGLONG rows = 0;
  fits_get_num_rowsll(as_fits(handle()), &rows, &status);
  check(status, "counting table rows");
  return rows;
}

namespace {

/// The 1-based number of `column` in the current table (case-insensitive); 0 when absent.
int column_number(fitsfile* f, const std::string& column) {
  int status = 0, number = 0;
  fits_get_colnum(f, CASEINSEN, const_cast<char*>(column.c_str()), &number, &status);
  return status == 0 ? number : 0;
}

}  // namespace

bool FitsFile::has_column(const std::string& column) { return column_number(as_fits(handle()), column) > 0; }

std::vector<double> FitsFile::read_cell(const std::string& column, std::int64_t row) {
  const int number = column_number(as_fits(handle()), column);
  if (number == 0) throw Error(where() + ": no column " + column);
  int status = 0, type = 0;
  LONGLONG repeat = 0, width = 0;
  fits_get_coltypell(as_fits(handle()), number, &type, &repeat, &width, &status);
  check(status, "reading the type of column " + column);
  std::vector<double> values(static_cast<std::size_t>(repeat));
  int anynul = 0;
  fits_read_col(as_fits(handle()), TDOUBLE, number, row + 1, 1, repeat, nullptr, values.data(), &anynul, &status);
  check(status, "reading column " + column + " of row " + std::to_string(row));
  return values;
}

std::vector<std::int64_t> FitsFile::cell_dimensions(const std::string& column) {
  const int number = column_number(as_fits(handle()), column);
  if (number == 0) throw Error(where() + ": no column " + column);
  int status = 0, count = 0;
  LONGLONG dims[8] = {0};
  fits_read_tdimll(as_fits(handle()), number, 8, &count, dims, &status);
  check(status, "reading TDIM of column " + column);
  return std::vector<std::int64_t>(dims, dims + std::min(count, 8));
}

std::string FitsFile::read_string_cell(const std::string& column, std::int64_t row) {
  const int number = column_number(as_fits(handle()), column);
  if (number == 0) throw Error(where() + ": no column " + column);
  int status = 0, width = 0;
  fits_get_col_display_width(as_fits(handle()), number, &width, &status);
  check(status, "reading the width of column " + column);
  std::vector<char> text(static_cast<std::size_t>(std::max(width, 1)) + 1, '\0');
  char* cells[1] = {text.data()};
  int anynul = 0;
  fits_read_col(as_fits(handle()), TSTRING, number, row + 1, 1, 1, nullptr, cells, &anynul, &status);
  check(status, "reading column " + column + " of row " + std::to_string(row));
  std::string value(text.data());
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

namespace {

/// Reads `box` (checked against the image's h x w pixels) of the current image HDU of `f` into
/// `pixels`, as CFITSIO type `datatype` with `null` for undefined pixels (nullptr: none); returns
/// CFITSIO's status, and in `part` " (rows ..., columns ...)" unless `box` is the whole image.
template <class T>
int read_box(fitsfile* f, const PixelBox& box, std::int64_t h, std::int64_t w, const std::string& where,
             int datatype, T* null, std::vector<T>& pixels, std::string& part) {
  const bool whole = box == PixelBox::whole(h, w);
  if (!whole && (box.y0 < 0 || box.x0 < 0 || box.y1 > h || box.x1 > w || box.height() <= 0 || box.width() <= 0)) {
    throw Error(where + ": " + box.text() + " asked for, but the image is " + shape_text(h, w));
  }
  part = whole ? "" : " (" + box.text() + ")";
  pixels.assign(static_cast<std::size_t>(box.count()), T{});
  if (box.count() == 0) return 0;  // an empty image (NAXISn = 0) has nothing to read
  long first[2] = {static_cast<long>(box.x0 + 1), static_cast<long>(box.y0 + 1)};
  long last[2] = {static_cast<long>(box.x1), static_cast<long>(box.y1)}, step[2] = {1, 1};
  int status = 0, anynul = 0;
  fits_read_subset(f, datatype, first, last, step, null, pixels.data(), &anynul, &status);
  return status;
}

}  // namespace

Image FitsFile::read_image(const PixelBox& box) {
  const auto [h, w] = image_shape();
  Image image;
  image.height = box.height();
  image.width = box.width();
  float nan = std::numeric_limits<float>::quiet_NaN();
  std::string part;
  const int status = read_box(as_fits(handle()), box, h, w, where(), TFLOAT, &nan, image.pixels, part);
  check(status, "reading pixels" + part);
  return image;
}

MaskImage FitsFile::read_mask(const PixelBox& box) {
  const auto [h, w] = image_shape();
  MaskImage mask{box.height(), box.width(), {}};
  std::string part;
  const int status = read_box<std::int32_t>(as_fits(handle()), box, h, w, where(), TINT, nullptr, mask.pixels, part);
  check(status, "reading mask pixels" + part);
  return mask;
}

Image FitsFile::read_image() {
  const auto [h, w] = image_shape();
  return read_image(PixelBox::whole(h, w));
}

MaskImage FitsFile::read_mask() {
  const auto [h, w] = image_shape();
  return read_mask(PixelBox::whole(h, w));
}

std::optional<double> FitsFile::read_double(const std::string& key) {
  int status = 0;
  double value = 0;
  fits_read_key(as_fits(handle()), TDOUBLE, key.c_str(), &value, nullptr, &status);
  if (status == KEY_NO_EXIST) return std::nullopt;
  check(status, "reading key " + key + " as a number");
  return value;
}

std::optional<std::string> FitsFile::read_string(const std::string& key) {
  int status = 0;
  char* text = nullptr;
  fits_read_key_longstr(as_fits(handle()), key.c_str(), &text, nullptr, &status);
  if (status == KEY_NO_EXIST) return std::nullopt;
  check(status, "reading key " + key);
  std::string value(text);
  fits_free_memory(text, &status);
  return value;
}

std::vector<HeaderCard> FitsFile::read_cards() {
  int status = 0, count = 0;
  fits_get_hdrspace(as_fits(handle()), &count, nullptr, &status);
  check(status, "reading the header size");
  std::vector<HeaderCard> cards;
  for (int i = 1; i <= count; ++i) {
    char key[FLEN_KEYWORD] = {0}, value[FLEN_VALUE] = {0}, comment[FLEN_COMMENT] = {0};
    fits_read_keyn(as_fits(handle()), i, key, value, comment, &status);
    check(status, "reading header card " + std::to_string(i));
    cards.push_back({key, value, comment});
  }
  return cards;
}

void FitsFile::write_image(const Image& image, const std::string& extname) {
  int status = 0;
  long axes[2] = {static_cast<long>(image.width), static_cast<long>(image.height)};
  fits_create_img(as_fits(handle()), FLOAT_IMG, 2, axes, &status);
  check(status, "creating an image HDU");
  fits_write_img(as_fits(handle()), TFLOAT, 1, image.size(), const_cast<float*>(image.pixels.data()), &status);
  check(status, "writing pixels");
  if (!extname.empty()) write_key("EXTNAME", extname);
}

void FitsFile::write_empty_primary() {
  int status = 0;
  fits_create_img(as_fits(handle()), FLOAT_IMG, 0, nullptr, &status);
  check(status, "creating the primary HDU");
}

void FitsFile::write_mask(const MaskImage& mask, const std::string& extname) {
  int status = 0;
  long axes[2] = {static_cast<long>(mask.width), static_cast<long>(mask.height)};
  fits_create_img(as_fits(handle()), LONG_IMG, 2, axes, &status);
  check(status, "creating a mask HDU");
  fits_write_img(as_fits(handle()), TINT, 1, mask.height * mask.width, const_cast<std::int32_t*>(mask.pixels.data()),
                 &status);
  check(status, "writing mask pixels");
  write_key("EXTNAME", extname);
}

void FitsFile::write_key(const std::string& key, double value, const std::string& comment) {
  int status = 0;
  fits_update_key_dbl(as_fits(handle()), key.c_str(), value, -9, comment.c_str(), &status);
  check(status, "writing key " + key);
}

void FitsFile::write_key(const std::string& key, long long value, const std::string& comment) {
  int status = 0;
  fits_update_key_lng(as_fits(handle()), key.c_str(), value, comment.c_str(), &status);
  check(status, "writing key " + key);
}

void FitsFile::write_key(const std::string& key, const std::string& value, const std::string& comment) {
  int status = 0;
  if (value.size() > 68) {
    fits_write_key_longwarn(as_fits(handle()), &status);
    fits_update_key_longstr(as_fits(handle()), key.c_str(), value.c_str(), comment.c_str(), &status);
  } else {
    fits_update_key_str(as_fits(handle()), key.c_str(), value.c_str(), comment.c_str(), &status);
  }
  check(status, "writing key " + key);
}

void FitsFile::write_card(const HeaderCard& card) {
  int status = 0;
  char text[FLEN_CARD] = {0};
  std::string templ = card.key + " = " + card.value;
  if (!card.comment.empty()) templ += " / " + card.comment;
  int keytype = 0;
  fits_parse_template(const_cast<char*>(templ.c_str()), text, &keytype, &status);
  check(status, "formatting card " + card.key);
  fits_update_card(as_fits(handle()), card.key.c_str(), text, &status);
  check(status, "writing card " + card.key);
}

void FitsFile::write_history(const std::string& text) {
  int status = 0;
  fits_write_history(as_fits(handle()), text.c_str(), &status);
  check(status, "writing HISTORY");
}

void FitsFile::write_checksum() {
  int status = 0;
  fits_write_chksum(as_fits(handle()), &status);
  check(status, "writing CHECKSUM");
}

void FitsFile::close() {
  int status = 0;
  void* p = fptr_.release();
  if (p != nullptr && fits_close_file(as_fits(p), &status) != 0) {
    throw Error(path_ + ": closing failed (" + cfitsio_text(status) + ")");
  }
}

}  // namespace astroclear::io
