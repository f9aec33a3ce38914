-- File names are not data: an uploaded file's name is often the patient's ("Doe_Jane_MRN....jpg"). Uploads no
-- longer store it; the names earlier uploads left in image.metadata go too.
UPDATE core.image SET metadata = metadata - 'original_filename' WHERE metadata ? 'original_filename';
