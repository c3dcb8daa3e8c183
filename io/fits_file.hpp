// FitsFile: the one owner of a CFITSIO fitsfile*, with 0-indexed reads and writes of image HDUs.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/image.hpp"

namespace astroclear::io {

/// Move-only owner of an open FITS file; closes it in the destructor. Errors throw astroclear::Error
/// naming the file (and the HDU when one is current). CFITSIO's 1-indexing stays inside.
class FitsFile {
 public:
  /// Opens an existing file read-only. Throws "PATH: not a FITS file (...)" and the like.
  static FitsFile open(const std::string& path);
  /// Opens `path` read-only at the HDU with EXTNAME `extname`, or at its first 2-D image when
  /// `extname` is empty. Throws "PATH: no HDU with EXTNAME = 'X'" or "PATH: no 2-D image HDU".
  static FitsFile open_image(const std::string& path, const std::string& extname);
  /// Creates a new file; fails if it exists.
  static FitsFile create(const std::string& path);

  FitsFile(FitsFile&&) noexcept;
  FitsFile& operator=(FitsFile&&) noexcept;
  ~FitsFile();

  const std::string& path() const { return path_; }
  /// "file.fits[IMAGE]" or "file.fits[HDU 0]" for messages.
  std::string where() const;
  /// ": the file is truncated or damaged (...)" when the file does not end where its last HDU's
  /// data does (it was cut short by a full disk or an interrupted copy), else "". Moves to the last
  /// HDU.
  std::string truncation_note();

  int hdu_count();
  /// Moves to HDU `index` (0 = primary).
  void move_to(int index);
  /// Moves to the HDU with EXTNAME `name`; false if there is none.
  bool move_to(const std::string& extname);
  /// Moves to the first HDU holding a 2-D image (primary, else the first extension); false if none.
  bool move_to_first_image();

  /// NAXIS2 x NAXIS1 of the current HDU; throws when it is not a 2-D image.
  std::pair<std::int64_t, std::int64_t> image_shape();
  Image read_image();
  MaskImage read_mask();
  /// The pixels of `box` alone (CFITSIO subset read: the rest of the image is not read).
  Image read_image(const PixelBox& box);
  MaskImage read_mask(const PixelBox& box);

  /// The number of axes of the current HDU's image (0 for a table or an empty HDU).
  int image_dimensions();
  /// Plane `plane` (0-based) of the 3-D image in the current HDU.
  Image read_cube_plane(std::int64_t plane);
  /// NAXIS3 of the 3-D image in the current HDU.
  std::int64_t cube_planes();

  /// Moves to the first binary table with a column `column` (case-insensitive); false if none.
  bool move_to_table_with(const std::string& column);
  std::int64_t table_rows();
  /// Whether the current table has a column `column` (case-insensitive).
  bool has_column(const std::string& column);
  /// Every element of the cell of `column` (case-insensitive) in `row` (0-based), as doubles.
  std::vector<double> read_cell(const std::string& column, std::int64_t row);
  /// The dimensions of a cell of `column` (TDIMn, fastest first; {repeat} without TDIMn).
  std::vector<std::int64_t> cell_dimensions(const std::string& column);
  /// A string cell, trailing blanks removed.
  std::string read_string_cell(const std::string& column, std::int64_t row);

  std::optional<double> read_double(const std::string& key);
  std::optional<std::string> read_string(const std::string& key);
  /// Every card of the current header, as key/value/comment.
  std::vector<HeaderCard> read_cards();
  /// The current HDU's header as FITS text (80-character cards, END excluded), for WCSLIB's wcspih.
  std::string header_text();

  /// Appends an image HDU (primary if the file is empty) and makes it current.
  void write_image(const Image& image, const std::string& extname = "");
  /// Writes an empty primary HDU (header only), as multi-extension files begin.
  void write_empty_primary();
  void write_mask(const MaskImage& mask, const std::string& extname);
  void write_key(const std::string& key, double value, const std::string& comment = "");
  void write_key(const std::string& key, long long value, const std::string& comment = "");
  void write_key(const std::string& key, const std::string& value, const std::string& comment = "");
  /// Writes a card verbatim (value already formatted as FITS text).
  void write_card(const HeaderCard& card);
  void write_history(const std::string& text);
  /// Writes the DATASUM/CHECKSUM cards of the current HDU.
  void write_checksum();
  /// Flushes and closes; errors throw (the destructor only logs).
  void close();

 private:
  struct Closer {
    void operator()(void* fptr) const noexcept;
  };
  FitsFile(std::string path, void* fptr);
  void* handle() const;
  void check(int status, const std::string& what) const;

  std::string path_;
  std::unique_ptr<void, Closer> fptr_;
};

}  // namespace astroclear::io
